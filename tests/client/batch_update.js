#!/usr/bin/env node
/*
 * Drives crmblob's UpdateBatchTask with the official client `@superoffice/webapi`
 * (BatchAgent), unchanged: a task read with getBatchTaskInfoAsync, its
 * Description changed and the carrier sent back as the client has it
 * (camelCase members, dates as the client made them).
 *
 * Needs a server started with CRMBLOB_TEST_JOBS=1 (the job crmblob.test.sleep)
 * that runs jobs. Input: CRMBLOB_URL, CRMBLOB_USER, CRMBLOB_PASSWORD.
 * Output: one line per check, `ok <name>` or `FAIL <name>: <detail>`, then
 * {"passed":n,"failed":m}; exit code 0 when nothing failed.
 */
'use strict';

const { BatchAgent } = require('@superoffice/webapi');

const cfg = {
    baseUrl: process.env.CRMBLOB_URL,
    axiosConfig: {
        auth: { username: process.env.CRMBLOB_USER, password: process.env.CRMBLOB_PASSWORD },
        proxy: false,
        timeout: 30000,
    },
};
let passed = 0, failed = 0;

function ok(cond, detail) {
    if (!cond) throw new Error(detail);
}

async function check(name, fn) {
    try {
        await fn();
        console.log(`ok ${name}`);
        passed++;
    } catch (e) {
        console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
        failed++;
    }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function finished(batch, id) {
    for (let i = 0; i < 200; i++) {
        const info = await batch.getBatchTaskInfoAsync(id);
        if (info && (info.state === 'Succeeded' || info.state === 'Failed')) return info;
        await sleep(100);
    }
    throw new Error(`task ${id} never finished`);
}

async function main() {
    const batch = new BatchAgent(cfg);
    const id = await batch.startBatchJobAsync({ Name: 'crmblob.test.sleep', ParameterObject: { Seconds: '0' } });
    const done = await finished(batch, id);
    await check('updateBatchTask.description', async () => {
        const info = await batch.getBatchTaskInfoAsync(id);
        info.description = 'changed by the official client';
        const got = await batch.updateBatchTaskAsync(info);
        ok(got && got.id === id && got.description === 'changed by the official client',
           JSON.stringify(got));
        ok(got.state === done.state && got.result === done.result, JSON.stringify(got));
    });
    await check('updateBatchTask.readBack', async () => {
        const info = await batch.getBatchTaskInfoAsync(id);
        ok(info.description === 'changed by the official client', JSON.stringify(info));
    });
    await check('updateBatchTask.parametersRefused', async () => {
        const info = await batch.getBatchTaskInfoAsync(id);
        info.parameterObject = { Seconds: '5' };
        let status = 0;
        try {
            await batch.updateBatchTaskAsync(info);
        } catch (e) {
            status = e && e.response ? e.response.status : -1;
        }
        ok(status === 400, `status ${status}`);
    });
    await check('updateBatchTask.unknownNull', async () => {
        const got = await batch.updateBatchTaskAsync({ Id: 2000000000, Description: 'none' });
        ok(got === null || got === undefined || !got.id, JSON.stringify(got));
    });
    console.log(JSON.stringify({ passed, failed }));
    process.exit(failed ? 1 : 0);
}

main().catch((e) => {
    console.log(`FAIL main: ${e && e.message ? e.message : e}`);
    console.log(JSON.stringify({ passed, failed: failed + 1 }));
    process.exit(1);
});
