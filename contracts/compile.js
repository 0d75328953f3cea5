// Compiles contracts/*.sol with the pinned npm `solc` (package-lock.json) and writes
// contracts/artifacts/<Contract>.json: { contract, source, compiler, abi, bytecode, deployedBytecode }.
// Usage: npm ci --prefix contracts && node contracts/compile.js [--out DIR]
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const dir = __dirname;
const outArg = process.argv.indexOf('--out');
const outDir = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : path.join(dir, 'artifacts');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.sol')).sort();
const sources = {};
for (const f of files) sources[f] = { content: fs.readFileSync(path.join(dir, f), 'utf8') };
const input = {
  language: 'Solidity',
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'prague',
    metadata: { bytecodeHash: 'none', appendCBOR: false },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
for (const e of out.errors || []) process.stderr.write(e.formattedMessage + '\n');
if (errors.length) process.exit(1);
fs.mkdirSync(outDir, { recursive: true });
for (const f of files) {
  for (const [name, c] of Object.entries(out.contracts[f] || {})) {
    if (!c.evm.bytecode.object || c.abi.length === 0) continue; // internal-only libraries are inlined
    const art = {
      contract: name,
      source: f,
      compiler: 'solc ' + solc.version(),
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
    fs.writeFileSync(path.join(outDir, name + '.json'), JSON.stringify(art, null, 1) + '\n');
  }
}
