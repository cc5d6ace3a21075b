#!/usr/bin/env node
// Compiles the Solidity templates beside this script with solc-js and writes
// one build artifact per contract.
//
// Usage: node compile.js <solcModuleDir> <outDir>
//
// <solcModuleDir> is an installed solc-js package (scripts/solc.sh prints
// one); <outDir> receives Notary.json and Token.json. The EVM version is
// London, the chain's genesis fork, so the bytecode holds no PUSH0.
'use strict';

const fs = require('fs');
const path = require('path');

const CONTRACTS = ['Notary', 'Token'];
const EVM_VERSION = 'london';
const OPTIMIZER_RUNS = 200;

function main(argv) {
  if (argv.length !== 2) {
    process.stderr.write('usage: node compile.js <solcModuleDir> <outDir>\n');
    return 2;
  }
  const solc = require(path.resolve(argv[0]));
  const outDir = path.resolve(argv[1]);

  const sources = {};
  for (const name of CONTRACTS) {
    const file = name + '.sol';
    sources[file] = { content: fs.readFileSync(path.join(__dirname, file), 'utf8') };
  }
  const input = {
    language: 'Solidity',
    sources,
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: OPTIMIZER_RUNS },
      metadata: { bytecodeHash: 'none' },
      outputSelection: {
        '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] },
      },
    },
  };

  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  let failed = false;
  for (const e of output.errors || []) {
    const text = (e.formattedMessage || e.message || JSON.stringify(e)).trimEnd();
    process.stderr.write(text + '\n');
    if (e.severity === 'error') failed = true;
  }
  if (failed) {
    process.stderr.write('compile.js: compilation failed\n');
    return 1;
  }

  fs.mkdirSync(outDir, { recursive: true });
  for (const name of CONTRACTS) {
    const file = name + '.sol';
    const c = output.contracts && output.contracts[file] && output.contracts[file][name];
    if (!c || !c.evm || !c.evm.bytecode || !c.evm.bytecode.object) {
      process.stderr.write(`compile.js: no output for ${file}:${name}\n`);
      return 1;
    }
    const artifact = {
      contractName: name,
      source: file,
      compiler: solc.version(),
      evmVersion: EVM_VERSION,
      optimizerRuns: OPTIMIZER_RUNS,
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
    const dest = path.join(outDir, name + '.json');
    fs.writeFileSync(dest, JSON.stringify(artifact, null, 2) + '\n');
    process.stderr.write(`compile.js: wrote ${dest}\n`);
  }
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`compile.js: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
}
