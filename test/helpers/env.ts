// Imported first by every test file: the suite runs with none of the user's CLIPLENS_* / HF_*
// settings (offline mode, cache directory, hub endpoint, threads, execution provider), so it
// behaves the same on every machine. Spawned CLIs inherit this cleaned environment.

for (const key of Object.keys(process.env)) if (/^(CLIPLENS_|HF_)/.test(key)) delete process.env[key];
