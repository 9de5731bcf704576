// The CLI as a Unix tool: help, version, man page, completions, colour, the name
// it was invoked as, typos, combined short flags, -v.
import { describe, expect, test } from "bun:test";
import { copyFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { COMMANDS } from "../src/commands.ts";
import { manPage } from "../src/manpage.ts";
import { BIN, have, mqName, ROOT, runPostbox, sh, startPostbox, tempDir } from "./harness.ts";

const ESC = "\x1b[";

/** Run a command line under a real pseudo-terminal (util-linux script); returns what the terminal got. */
async function onTerminal(dir: string, cmdline: string, env: Record<string, string> = {}) {
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ");
  const r = await sh(dir, `${vars} script -qec ${JSON.stringify(cmdline)} /dev/null < /dev/null`, 60_000);
  return r.stdout;
}

describe("help, commands and flags", () => {
  test("--help: commands, every serve option, the global options; no escapes on a pipe", async () => {
    using dir = tempDir();
    const r = await runPostbox(dir.path, ["--help"]);
    expect(r.exitCode).toBe(0);
    for (const word of ["serve", "send", "wait", "help", "completion", "--fifo", "--no-fifo", "--store", "-q, --quiet", "-v, --verbose", "--color <when>", "-V, --version"])
      expect(r.stdout).toContain(word);
    expect(r.stdout).not.toContain("\x1b");
  });

  test("postbox help [command] and postbox send --help show that command's options", async () => {
    using dir = tempDir();
    const viaHelp = await runPostbox(dir.path, ["help", "send"]);
    const viaFlag = await runPostbox(dir.path, ["send", "--help"]);
    expect(viaHelp).toEqual(viaFlag);
    expect(viaHelp.exitCode).toBe(0);
    expect(viaHelp.stdout).toContain(`Usage: ${BIN} send [options] [message...]`);
    expect(viaHelp.stdout).toContain("--timeout <s>");
    expect(viaHelp.stdout).not.toContain("--max-connections"); // serve's, not send's
    expect((await runPostbox(dir.path, ["help"])).stdout).toBe((await runPostbox(dir.path, ["--help"])).stdout);
    const bad = await runPostbox(dir.path, ["help", "sned"]);
    expect(bad).toEqual({ exitCode: 2, stdout: "", stderr: `postbox: unknown command "sned"; did you mean "send"?\nTry '${BIN} --help' for the options.\n` });
  });

  test("a misspelt command: did you mean, exit 2, nothing served", async () => {
    using dir = tempDir();
    expect(await runPostbox(dir.path, ["sevre"])).toEqual({
      exitCode: 2,
      stdout: "",
      stderr: `postbox: unknown command "sevre"; did you mean "serve"?\nTry '${BIN} --help' for the options.\n`,
    });
    expect(readdirSync(dir.path)).toEqual([]);
  });

  test("a send usage error points at send's help", async () => {
    using dir = tempDir();
    const r = await runPostbox(dir.path, ["send", "--sockt", "x", "hi"]);
    expect(r).toEqual({ exitCode: 2, stdout: "", stderr: `postbox: unknown option --sockt\nTry '${BIN} send --help' for the options.\n` });
  });

  test("combined short flags: -qv is read as -q -v (and refused as such); an unknown letter is named", async () => {
    using dir = tempDir();
    const qv = await runPostbox(dir.path, ["-qv"]);
    expect(qv.exitCode).toBe(2);
    expect(qv.stderr).toStartWith("postbox: --quiet and --verbose exclude each other\n");
    const qx = await runPostbox(dir.path, ["-qx"]);
    expect(qx.exitCode).toBe(2);
    expect(qx.stderr).toStartWith("postbox: unknown option -x in -qx (short options here: -q, -v; combine only those)\n");
  });

  test("--version: version, git commit, target and Bun version", async () => {
    using dir = tempDir();
    const head = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: ROOT }).stdout.toString().trim();
    const r = await runPostbox(dir.path, ["--version"]);
    const target = `linux-${process.arch}`;
    expect(r).toEqual({ exitCode: 0, stdout: expect.stringMatching(new RegExp(`^postbox ${pkg.version} \\(commit ${head}(-dirty)?, ${target}, Bun ${Bun.version}\\)\\n$`)), stderr: "" });
    expect((await runPostbox(dir.path, ["send", "-V"])).stdout).toBe(r.stdout);
  });
});

describe("the name it was invoked as", () => {
  test("renamed, the banner and hints name the renamed file; on PATH, the bare name", async () => {
    using dir = tempDir();
    copyFileSync(BIN, join(dir.path, "postbox-linux-x64"));
    const mq = mqName();
    await using pb = await startPostbox(dir.path, ["--mq", mq, "--no-signals"], { bin: "./postbox-linux-x64" });
    expect(pb.stderr.text).toContain(`... by mq_send: ./postbox-linux-x64 send --mq ${mq} 4`);
    const hint = await sh(dir.path, "./postbox-linux-x64 --sockt x");
    expect(hint.stderr).toEndWith("Try './postbox-linux-x64 --help' for the options.\n");
    const onPath = await sh(dir.path, `PATH="${dir.path}:$PATH" postbox-linux-x64 send --bogus`);
    expect(onPath.stderr).toEndWith("Try 'postbox-linux-x64 send --help' for the options.\n");
  });
});

describe("colour", () => {
  test.skipIf(!have("script"))("on a terminal: colour; NO_COLOR, --color=never and pipes: none; --color=always forces it", async () => {
    using dir = tempDir();
    expect(await onTerminal(dir.path, `${BIN} --help`)).toContain(ESC);
    expect(await onTerminal(dir.path, `${BIN} --bogus`)).toContain(`${ESC}31mpostbox:`);
    expect(await onTerminal(dir.path, `${BIN} --help`, { NO_COLOR: "1" })).not.toContain("\x1b");
    expect(await onTerminal(dir.path, `${BIN} --bogus`, { NO_COLOR: "1" })).not.toContain("\x1b");
    expect(await onTerminal(dir.path, `${BIN} --color=never --help`)).not.toContain("\x1b");
    expect(await onTerminal(dir.path, `${BIN} --help | cat`)).not.toContain("\x1b");
    expect((await runPostbox(dir.path, ["--color=always", "--help"])).stdout).toContain(ESC);
    expect((await runPostbox(dir.path, ["--color", "always", "--bogus"])).stderr).toContain(`${ESC}31mpostbox:`);
    expect(await runPostbox(dir.path, ["--color=sometimes"])).toMatchObject({ exitCode: 2, stderr: expect.stringContaining("--color must be auto, always or never") });
  });

  test.skipIf(!have("script"))("the build's line is not painted as an error on a terminal", async () => {
    using dir = tempDir();
    const out = await onTerminal(ROOT, `"${process.execPath}" build.ts --outfile=${join(dir.path, "pb")}`);
    expect(out).toMatch(/^built \S+ \(linux-\w+, [0-9a-f]{12}(-dirty)?\)\r?\n$/);
  }, 60_000);
});

describe("man page", () => {
  test("postbox.1 is generated from the option definitions and has not drifted (npm run man)", () => {
    expect(readFileSync(join(ROOT, "postbox.1"), "utf8")).toBe(manPage());
  });

  test("every option of every command is in the man page", () => {
    const page = manPage();
    for (const cmd of COMMANDS)
      for (const [name, d] of Object.entries(cmd.args)) if (d.type !== "positional") expect(page).toContain(`\\fB\\-\\-${name.replace(/-/g, "\\-")}\\fR`);
  });

  test.skipIf(!have("groff"))("groff renders it without a warning", async () => {
    using dir = tempDir();
    const r = await sh(dir.path, `groff -man -Tutf8 -ww -z "${ROOT}/postbox.1"`);
    expect(r).toEqual({ exitCode: 0, stdout: "", stderr: "" });
    const text = await sh(dir.path, `groff -man -Tutf8 -P-cbou "${ROOT}/postbox.1"`);
    for (const h of ["NAME", "SYNOPSIS", "SERVE OPTIONS", "SEND OPTIONS", "EXIT STATUS", "ENVIRONMENT"]) expect(text.stdout).toContain(`\n${h}\n`);
    expect(text.stdout).toContain("--store file");
  });
});

describe("completion", () => {
  /** Ask the generated bash completion what it offers after `words` (the last one being completed). */
  async function bashComplete(dir: string, words: string[]) {
    const line = words.map((w) => JSON.stringify(w)).join(" ");
    const script = `eval "$("${BIN}" completion bash)"; complete -p postbox; COMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}; _postbox; printf '%s\\n' "\${COMPREPLY[@]}"`;
    return sh(dir, script);
  }

  test("bash: registered with complete; commands, options per command, files for paths, values for --color", async () => {
    using dir = tempDir();
    const cmds = await bashComplete(dir.path, ["postbox", "se"]);
    expect(cmds.exitCode).toBe(0);
    expect(cmds.stdout).toStartWith("complete -F _postbox postbox");
    expect(cmds.stdout.split("\n").slice(1, -1)).toEqual(["serve", "send"]);
    expect((await bashComplete(dir.path, ["postbox", "--sto"])).stdout.split("\n").slice(1, -1)).toEqual(["--store"]);
    expect((await bashComplete(dir.path, ["postbox", "send", "--ti"])).stdout.split("\n").slice(1, -1)).toEqual(["--timeout"]);
    expect((await bashComplete(dir.path, ["postbox", "send", "--m"])).stdout.split("\n").slice(1, -1)).toEqual(["--mq"]); // not serve's --mode
    expect((await bashComplete(dir.path, ["postbox", "--color", "a"])).stdout.split("\n").slice(1, -1)).toEqual(["auto", "always"]);
    expect((await bashComplete(dir.path, ["postbox", "completion", "z"])).stdout.split("\n").slice(1, -1)).toEqual(["zsh"]);
    await Bun.write(join(dir.path, "mail.ndjson"), "");
    expect((await bashComplete(dir.path, ["postbox", "--store", "mai"])).stdout.split("\n").slice(1, -1)).toEqual(["mail.ndjson"]);
  });

  test("zsh and fish scripts name every option; they parse where the shell is installed", async () => {
    using dir = tempDir();
    for (const shell of ["zsh", "fish"]) {
      const r = await runPostbox(dir.path, ["completion", shell]);
      expect(r.exitCode).toBe(0);
      for (const opt of ["store", "max-connections", "timeout", "color"]) expect(r.stdout).toContain(shell === "zsh" ? `--${opt}[` : `-l ${opt}`);
      if (have(shell)) {
        await Bun.write(join(dir.path, `c.${shell}`), r.stdout);
        expect(await sh(dir.path, `${shell} -n c.${shell}`)).toMatchObject({ exitCode: 0 });
      }
    }
    if (have("fish")) {
      // fish completes for real from a script: ask it what `postbox send --ti` and `postbox --color ` offer.
      const ask = (line: string) => sh(dir.path, `fish --no-config -c 'source c.fish; complete -C "${line}"' | cut -f1`);
      expect((await ask("postbox send --ti")).stdout).toBe("--timeout\n");
      expect((await ask("postbox --color ")).stdout.split("\n").sort()).toEqual(["", "always", "auto", "never"]);
    }
    if (have("zsh")) {
      const r = await sh(dir.path, `zsh -fc 'autoload -U compinit; compinit -u -d ./zcompdump; source c.zsh; print -r -- $_comps[postbox]'`);
      expect(r.stdout).toBe("_postbox\n");
    }
    expect(await runPostbox(dir.path, ["completion", "tcsh"])).toMatchObject({ exitCode: 2, stderr: expect.stringContaining("completion needs a shell: bash, zsh, fish") });
  });
});

describe("-v", () => {
  test("names each channel opened, the handlers installed, each connection with its credentials, store fsyncs", async () => {
    using dir = tempDir();
    const mq = mqName();
    await using pb = await startPostbox(dir.path, ["-v", "--mq", mq, "--store", "mail.ndjson", "--signals", "USR1"]);
    const uid = process.getuid!();
    const gid = process.getgid!();
    expect(pb.stderr.text).toContain("postbox: debug: fifo fifo: created, mode 0600");
    expect(pb.stderr.text).toContain("postbox: debug: socket socket: listening, mode 0600, 1024 clients at once");
    expect(pb.stderr.text).toMatch(new RegExp(`postbox: debug: mq ${mq}: open, maxmsg \\d+, msgsize \\d+, 0 waiting`));
    expect(pb.stderr.text).toMatch(/postbox: debug: signal SIGUSR1 \(10\): SA_SIGINFO handler installed/);
    const s = Bun.spawn([BIN, "send", "--socket", "socket", "hi"], { cwd: dir.path });
    expect(await s.exited).toBe(0);
    await pb.waitStderr(new RegExp(`postbox: debug: socket\\[pid=${s.pid},uid=${uid},gid=${gid}\\] closed`));
    expect(pb.stderr.text).toContain(`postbox: debug: socket[pid=${s.pid},uid=${uid},gid=${gid}] connected`);
    await pb.waitStderr(/postbox: debug: store mail.ndjson: fsynced/);
    const end = await pb.stop();
    expect(end.exitCode).toBe(0);
  });
});
