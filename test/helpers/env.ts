// Imported first by every test file: the suite runs with none of the user's CLIPLENS_* / HF_*
// settings (offline mode, cache directory, hub endpoint, threads, execution provider), so it
// behaves the same on every machine. Spawned CLIs inherit this cleaned environment. The test
// harness's own switches (CLIPLENS_TEST_CHROMIUM, CLIPLENS_TEST_SKIP_BROWSER, …) are kept.

for (const key of Object.keys(process.env)) if (/^(CLIPLENS_|HF_)/.test(key) && !key.startsWith('CLIPLENS_TEST_')) delete process.env[key];
