import { it } from 'node:test';
import assert from 'node:assert/strict';
import { dropLocation, eachDatabase, startServer } from '../helpers/harness.js';
import { startSmsc, until } from './smsc.js';

eachDatabase('SMPP binds at start', (dialect) => {
  it('binds configured SMPP channels when the server starts, before anything is sent', async () => {
    const smsc = await startSmsc();
    const first = await startServer(dialect);
    try {
      const space = await first.createSpace();
      const put = await first.request({ method: 'PUT', url: `/apispaces/${space}/channels/sms`, payload: { enabled: true, provider: 'smpp', settings: { host: '127.0.0.1', port: smsc.port, systemId: 'esme', defaultFrom: 'ACME' } } });
      assert.ok(put.statusCode < 300, put.body);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(smsc.binds.length, 0, 'configuring alone does not bind');
      // the registry lists enabled configurations by provider (what the SMS module binds at start)
      const off = await first.createSpace();
      await first.request({ method: 'PUT', url: `/apispaces/${off}/channels/sms`, payload: { enabled: false, provider: 'smpp', settings: { host: '127.0.0.1', port: smsc.port, systemId: 'esme', defaultFrom: 'ACME' } } });
      assert.deepEqual(await first.container.services.channels.listByProvider('smpp', 'sms'), [{ apiSpaceId: space, channelId: 'sms' }]);
      assert.deepEqual(await first.container.services.channels.listByProvider('http'), []);
      await first.close();
      const second = await startServer(dialect, { location: first.location });
      try {
        await until(() => smsc.binds.length >= 1, 5000);
        assert.equal(smsc.binds[0], 'bind_transceiver');
      } finally {
        await second.close();
      }
    } finally {
      await dropLocation(first.location);
      await smsc.close();
    }
  });
});
