// npm run test:cpus: the CPU matrix. Runs test/cpus/smoke.cjs on this machine (expecting the best
// kernel set its CPU allows) and, on x86-64, under Debian's qemu-user on emulated CPU models:
//   Nehalem     SSE4.2, no AVX        -> scalar (proves the baseline code has no AVX in it)
//   SandyBridge AVX but no AVX2/FMA   -> scalar (proves AVX alone does not select avx2)
//   Haswell     AVX2 + FMA            -> avx2
// qemu raises SIGILL on any instruction the model lacks. It does not follow child processes, so
// the smoke test is a plain node script run directly under it.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const smoke = path.join(root, 'test', 'cpus', 'smoke.cjs');

const runs = [{ label: 'host', command: process.execPath, args: [smoke, '--expect=best'] }];
if (process.arch === 'x64') {
  const probe = spawnSync('qemu-x86_64', ['-version'], { encoding: 'utf8' });
  if (probe.error) {
    console.error('test:cpus: qemu-x86_64 not found; install Debian qemu-user (apt-get install -y qemu-user)');
    process.exit(1);
  }
  console.log(`test:cpus: ${probe.stdout.split('\n')[0]}`);
  for (const [model, isa] of [['Nehalem', 'scalar'], ['SandyBridge', 'scalar'], ['Haswell', 'avx2']]) {
    // qemu needs the interpreter's full path: it does not search PATH.
    runs.push({ label: `qemu -cpu ${model}`, command: 'qemu-x86_64', args: ['-cpu', model, process.execPath, smoke, `--expect=${isa}`] });
  }
} else {
  console.log(`test:cpus: ${process.arch} host, no x86-64 models to emulate; host only`);
}

let failed = 0;
for (const { label, command, args } of runs) {
  const started = Date.now();
  const result = spawnSync(command, args, { cwd: root, encoding: 'utf8', timeout: 300_000 });
  // TCG cannot emulate some system-level CPUID bits (pcid, x2apic, ...) and warns once per thread.
  const stderr = (result.stderr ?? '').split('\n').filter((line) => line && !/TCG doesn't support requested feature/.test(line));
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  const ok = result.status === 0;
  if (!ok) failed++;
  const how = result.signal ? `killed by ${result.signal}` : result.error ? result.error.message : `exit ${result.status}`;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${label.padEnd(22)} ${seconds.padStart(6)} s  ${(result.stdout ?? '').trim()}${ok ? '' : ` (${how})`}`);
  if (!ok || stderr.length) console.log(stderr.map((line) => `     ${line}`).join('\n'));
}
process.exit(failed ? 1 : 0);
