// Preloaded (node --import) by the start-up bench: prints the process's peak RSS (kB) on exit.
process.on('exit', () => process.stderr.write(`\ncliplens-bench-maxrss ${process.resourceUsage().maxRSS}\n`));
