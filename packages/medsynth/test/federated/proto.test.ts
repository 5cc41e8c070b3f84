// The committed gRPC/protobuf code is what federation.proto generates (`npm run proto -w medsynth`): an edit to
// the .proto without regenerating, or a hand edit of the generated file, fails here. Needs protoc (Debian
// protobuf-compiler, which .ci/run installs); where it is missing outside CI the comparison is skipped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('../../', import.meta.url));
const hasProtoc = spawnSync('protoc', ['--version']).status === 0;

test(
  'src/federated/proto/federation.ts is generated from proto/federation.proto',
  { skip: !hasProtoc && !process.env.CI ? 'protoc is not installed' : false },
  async () => {
    const scripts = (
      JSON.parse(await readFile(join(pkg, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    const out = await mkdtemp(join(tmpdir(), 'medsynth-proto-'));
    try {
      const command = scripts['proto']!.replace(
        '--ts_proto_out=src/federated/proto',
        `--ts_proto_out=${out}`,
      );
      const r = spawnSync('sh', ['-c', command], { cwd: pkg, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const generated = await readFile(join(out, 'federation.ts'), 'utf8');
      const committed = await readFile(join(pkg, 'src', 'federated', 'proto', 'federation.ts'), 'utf8');
      assert.equal(committed, generated, 'regenerate with `npm run proto -w medsynth`');
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  },
);
