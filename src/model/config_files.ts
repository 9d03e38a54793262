// Reading a model's JSON files with errors that name the file.

import { readTextFile } from '../io/files.ts';
import { ConfigError } from '../errors.ts';

export function readJson(path: string): unknown {
  const text = readTextFile(path, 'config');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON (${(e as Error).message})`);
  }
}

/** Prefix the file so a config error says where it came from. */
export function withPath<T>(path: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ConfigError && !e.message.includes(path)) throw new ConfigError(`${path}: ${e.message}`);
    throw e;
  }
}
