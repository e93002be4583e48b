import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_TCG_TB_SIZE_MIB, tcgTbSizeMiB } from './tb-size.js';
import { daemonConfigFromOptions } from '../daemon-options.js';

test('the TCG translation cache is 512 MiB unless a flag or $KILN_TCG_TB_SIZE_MIB says otherwise', () => {
  assert.equal(DEFAULT_TCG_TB_SIZE_MIB, 512);
  assert.equal(tcgTbSizeMiB(undefined), 512);
  assert.equal(tcgTbSizeMiB(''), 512);
  assert.equal(tcgTbSizeMiB('256'), 256);
  assert.equal(daemonConfigFromOptions({}, {}).tcgTbSizeMiB, undefined);
  assert.equal(daemonConfigFromOptions({}, { KILN_TCG_TB_SIZE_MIB: '1024' }).tcgTbSizeMiB, 1024);
  assert.equal(daemonConfigFromOptions({ tcgTbSize: '128' }, { KILN_TCG_TB_SIZE_MIB: '1024' }).tcgTbSizeMiB, 128);
});

test('a bad size is refused naming the flag or the variable it came from', () => {
  for (const bad of ['0', '16', '5000', '12.5', 'big', '-1']) {
    assert.throws(() => tcgTbSizeMiB(bad), /\$KILN_TCG_TB_SIZE_MIB must be a whole number of MiB from 32 to 4096/);
  }
  assert.throws(() => daemonConfigFromOptions({ tcgTbSize: '1g' }, {}), /--tcg-tb-size must be .*\(got 1g\)/);
  assert.throws(() => daemonConfigFromOptions({}, { KILN_TCG_TB_SIZE_MIB: '8' }), /\$KILN_TCG_TB_SIZE_MIB must be/);
});
