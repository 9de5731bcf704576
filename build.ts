// Builds the standalone ./postbox. Fails loudly: a broken build must not look green.
const result = await Bun.build({
  // the forwarder's thread is its own entry point, embedded beside the CLI
  entrypoints: ["./src/cli.ts", "./src/sinks/forward-worker.ts"],
  target: "bun",
  format: "esm",
  minify: true,
  bytecode: true,
  compile: { outfile: "./postbox", autoloadDotenv: false, autoloadBunfig: false },
});
if (!result.success) {
  for (const m of result.logs) console.error(m);
  process.exit(1);
}
console.error(`built ./postbox`);
