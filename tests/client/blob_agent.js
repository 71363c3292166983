#!/usr/bin/env node
/*
 * Drives crmblob's BLOB agent (POST /api/v1/Agents/BLOB/{Name}) with the
 * official SuperOffice client `@superoffice/webapi` (BLOBAgent), and checks
 * the bytes and carriers that come back, also against the REST endpoints
 * (GET/PUT /api/v1/{E}/{id}/Image, GET .../ImageInfo).
 *
 * Plain Node (18 or later), CommonJS, no test framework. Every check prints
 * one line, `ok <name>` or `FAIL <name>: <detail>` (or `skip <name>: <why>`
 * when an optional input is missing); the last line is
 * {"passed":n,"failed":m,"skipped":k}. Exit code 0 when nothing failed, 1 when
 * a check failed, 2 on bad usage.
 *
 * Input: environment variables, or KEY=VALUE arguments that override them:
 *   CRMBLOB_URL            server base URL, e.g. http://127.0.0.1:8080   (required)
 *   CRMBLOB_USER           an editor or admin user                       (required)
 *   CRMBLOB_PASSWORD       its password                                  (required)
 *   CRMBLOB_PERSON_ID, CRMBLOB_CONTACT_ID, CRMBLOB_PRODUCT_ID, CRMBLOB_PROJECT_ID
 *                          entities without an image (no thumbnail for the
 *                          product); each one missing is created via REST POST
 *   CRMBLOB_VIEWER_USER, CRMBLOB_VIEWER_PASSWORD
 *                          a viewer, for the rights checks (skipped without)
 *   CRMBLOB_JPEG           a JPEG larger than 200 px on a side (default tests/data/images/photo_320x240.jpg)
 *   CRMBLOB_JPEG_SMALL     another JPEG                        (default tests/data/small.jpg)
 *   CRMBLOB_PNG            a PNG                               (default tests/data/small.png)
 *   CRMBLOB_PNG_ALPHA      a PNG larger than 24x24             (default tests/data/images/alpha_48x32.png)
 *   CRMBLOB_TIMEOUT_MS     per-request timeout (default 30000)
 *
 *   node blob_agent.js --list    prints the names of every check, one a line
 */
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const path = require('path');
const zlib = require('zlib');

const HERE = __dirname;
const DATA = path.resolve(HERE, '..', 'data');
const KINDS = ['Person', 'Contact', 'Product', 'Project'];
const SIZED_KINDS = ['Person', 'Contact', 'Project']; // have Get{X}ImageWithSize
const MISSING_ID = 2000000000; // a positive int32 no test creates
const MISSING_BLOB = 2000000001;

// --------------------------------------------------------------------------
// configuration

function usage(msg) {
    if (msg) process.stderr.write(`blob_agent.js: ${msg}\n`);
    process.stderr.write('usage: node blob_agent.js [CRMBLOB_URL=...] [CRMBLOB_USER=...] ' +
        '[CRMBLOB_PASSWORD=...] [CRMBLOB_PERSON_ID=...] ... | --list | --help\n' +
        '(see the comment at the top of this file for every variable)\n');
}

function readConfig(argv) {
    const env = Object.assign({}, process.env);
    for (const a of argv) {
        const m = /^(CRMBLOB_[A-Z_]+)=(.*)$/s.exec(a);
        if (!m) {
            usage(`unknown argument ${JSON.stringify(a)}`);
            process.exit(2);
        }
        env[m[1]] = m[2];
    }
    const cfg = {
        url: env.CRMBLOB_URL,
        user: env.CRMBLOB_USER,
        password: env.CRMBLOB_PASSWORD,
        viewerUser: env.CRMBLOB_VIEWER_USER || '',
        viewerPassword: env.CRMBLOB_VIEWER_PASSWORD || '',
        ids: {},
        files: {
            jpeg: env.CRMBLOB_JPEG || path.join(DATA, 'images', 'photo_320x240.jpg'),
            jpegSmall: env.CRMBLOB_JPEG_SMALL || path.join(DATA, 'small.jpg'),
            png: env.CRMBLOB_PNG || path.join(DATA, 'small.png'),
            pngAlpha: env.CRMBLOB_PNG_ALPHA || path.join(DATA, 'images', 'alpha_48x32.png'),
        },
        timeout: parseInt(env.CRMBLOB_TIMEOUT_MS || '30000', 10),
    };
    const missing = ['CRMBLOB_URL', 'CRMBLOB_USER', 'CRMBLOB_PASSWORD'].filter((k) => !env[k]);
    if (missing.length) {
        usage(`missing ${missing.join(', ')}`);
        process.exit(2);
    }
    for (const k of KINDS) {
        const v = env[`CRMBLOB_${k.toUpperCase()}_ID`];
        if (v !== undefined && v !== '') {
            if (!/^[1-9][0-9]*$/.test(v)) {
                usage(`CRMBLOB_${k.toUpperCase()}_ID is not a positive integer: ${v}`);
                process.exit(2);
            }
            cfg.ids[k] = parseInt(v, 10);
        }
    }
    if (!Number.isFinite(cfg.timeout) || cfg.timeout <= 0) cfg.timeout = 30000;
    cfg.url = cfg.url.replace(/\/+$/, '');
    return cfg;
}

// --------------------------------------------------------------------------
// the names of every check, in the order they run (--list)

function checkNames() {
    const n = [
        'connect',
        'createDefaultBlobEntity',
        'saveBlobEntity.new',
        'saveBlobEntity.defaultConceptualType',
        'saveBlobEntity.update',
        'saveBlobEntity.missing',
        'getBlobEntity.existing',
        'getBlobEntity.missing',
        'setBlobStream',
        'getBlobStream.arraybuffer',
        'getBlobStream.base64',
        'setBlobStream.replace',
        'setBlobStream.notImage',
        'setBlobStream.missingRecord',
        'saveImageStream.person',
        'saveImageStream.project',
        'saveProjectImage',
        'saveProjectImage.request',
        'saveProjectImage.notImage',
        'outOfScope.null',
        'getProductThumbnail.none',
    ];
    for (const k of KINDS) {
        n.push(
            `getBlobEntityOn${k}.noImage`,
            `get${k}Image.noImage`,
            `set${k}Image`,
            `get${k}Image.arraybuffer`,
            `get${k}Image.base64`,
            `getBlobEntityOn${k}`,
            `rest.${k}.seesAgentImage`,
            `set${k}Image.replace`,
        );
        if (SIZED_KINDS.includes(k)) {
            n.push(`get${k}ImageWithSize.fit`, `get${k}ImageWithSize.oneSide`,
                `get${k}ImageWithSize.noEnlarge`, `get${k}ImageWithSize.base64`);
        }
        n.push(
            `change${k}Image.saved`,
            `rest.${k}.seesChangedImage`,
            `change${k}Image.zero`,
            `agent.${k}.seesRestImage`,
            `getBlobEntityOn${k}.missing`,
            `get${k}Image.missingEntity`,
            `set${k}Image.missingEntity`,
        );
    }
    n.push(
        'getProductThumbnail.derived',
        'setProductThumbnail',
        'getProductThumbnail.explicit',
        'getProductThumbnail.base64',
        'setProductThumbnail.missingEntity',
        'changeImage.conflict',
        'setBlobStream.linked',
        'deleteBlobEntity.linked',
        'deleteBlobEntity.unlinked',
        'deleteBlobEntity.missing',
        'auth.badPassword',
        'viewer.get',
        'viewer.saveBlobEntity',
        'viewer.setPersonImage',
        'viewer.changePersonImage',
        'viewer.deleteBlobEntity',
    );
    return n;
}

// --------------------------------------------------------------------------
// results

const results = { passed: 0, failed: 0, skipped: 0 };
const seen = new Set();

function oneLine(s) {
    return String(s).replace(/\s+/g, ' ').slice(0, 600);
}

async function check(name, fn) {
    if (seen.has(name)) throw new Error(`check ${name} run twice`);
    seen.add(name);
    try {
        await fn();
        results.passed++;
        console.log(`ok ${name}`);
        return true;
    } catch (e) {
        if (e instanceof Skip) {
            results.skipped++;
            console.log(`skip ${name}: ${oneLine(e.message)}`);
            return false;
        }
        results.failed++;
        console.log(`FAIL ${name}: ${oneLine(describe(e))}`);
        return false;
    }
}

class Skip extends Error {}

class CheckError extends Error {}

function fail(msg) {
    throw new CheckError(msg);
}

function describe(e) {
    if (e instanceof CheckError) return e.message;
    if (e && e.isAxiosError) {
        const r = e.response;
        if (r) return `HTTP ${r.status} from ${e.config && e.config.url}: ${bodyText(r.data)}`;
        return `${e.code || 'request error'}: ${e.message}`;
    }
    if (e && e.code && e.message) return `${e.code}: ${e.message}`;
    if (e && e.stack) return e.stack.split('\n').slice(0, 3).join(' | ');
    return String(e);
}

function bodyText(d) {
    if (d === undefined) return '(no body)';
    if (Buffer.isBuffer(d)) return d.toString('utf8', 0, Math.min(d.length, 300));
    if (d instanceof ArrayBuffer) return Buffer.from(d).toString('utf8', 0, Math.min(d.byteLength, 300));
    if (typeof d === 'string') return d.slice(0, 300);
    try {
        return JSON.stringify(d).slice(0, 300);
    } catch (_) {
        return String(d);
    }
}

// --------------------------------------------------------------------------
// assertions

function show(v) {
    if (Buffer.isBuffer(v)) return `<${v.length} bytes>`;
    if (v instanceof Date) return isNaN(v) ? 'Invalid Date' : v.toISOString();
    try {
        const s = JSON.stringify(v);
        return s === undefined ? String(v) : s.slice(0, 200);
    } catch (_) {
        return String(v);
    }
}

function eq(actual, expected, what) {
    if (actual !== expected) fail(`${what}: got ${show(actual)}, want ${show(expected)}`);
}

function ok(cond, what) {
    if (!cond) fail(what);
}

function isPosInt(v) {
    return typeof v === 'number' && Number.isInteger(v) && v > 0;
}

/* The binary answer of a Get*Image / GetBlobStream call made without options:
 * axios with responseType "arraybuffer" gives a Buffer in Node (an ArrayBuffer
 * in a browser). */
function asBytes(v, what) {
    if (Buffer.isBuffer(v)) return v;
    if (v instanceof ArrayBuffer) return Buffer.from(v);
    if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    fail(`${what}: not binary: ${typeof v} ${show(v)}`);
    return null;
}

function bytesEq(actual, expected, what) {
    const a = asBytes(actual, what);
    if (a.equals(expected)) return;
    let i = 0;
    while (i < a.length && i < expected.length && a[i] === expected[i]) i++;
    fail(`${what}: ${a.length} bytes, want ${expected.length}; first difference at offset ${i} ` +
        `(got ${a.slice(0, 12).toString('hex')}..., want ${expected.slice(0, 12).toString('hex')}...)`);
}

/* The base64 answer (options.returnBlobAs = AsBase64): a string. */
function b64Eq(actual, expected, what) {
    if (typeof actual !== 'string') fail(`${what}: not a base64 string: ${typeof actual} ${show(actual)}`);
    ok(/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(actual), `${what}: not base64: ${actual.slice(0, 60)}`);
    bytesEq(Buffer.from(actual, 'base64'), expected, `${what} (decoded base64)`);
}

function emptyBinary(v, what) {
    const b = asBytes(v, what);
    if (b.length !== 0) fail(`${what}: want an empty answer, got ${b.length} bytes: ${bodyText(b).slice(0, 80)}`);
}

async function rejects(promise, status, errorType, what) {
    let r;
    try {
        r = await promise;
    } catch (e) {
        if (!e || !e.isAxiosError) throw e;
        if (!e.response) fail(`${what}: ${e.code || e.message}`);
        eq(e.response.status, status, `${what}: HTTP status (${bodyText(e.response.data).slice(0, 200)})`);
        if (errorType) {
            let body = e.response.data;
            if (Buffer.isBuffer(body) || body instanceof ArrayBuffer) body = bodyText(body);
            if (typeof body === 'string') {
                try {
                    body = JSON.parse(body);
                } catch (_) {
                    fail(`${what}: error body is not JSON: ${body.slice(0, 200)}`);
                }
            }
            ok(body && typeof body === 'object', `${what}: error body ${show(body)}`);
            eq(body.ErrorType, errorType, `${what}: ErrorType`);
            eq(body.Error, true, `${what}: Error`);
        }
        return e;
    }
    fail(`${what}: succeeded (${show(r)}), want HTTP ${status}`);
    return null;
}

function needs(...vals) {
    for (const v of vals) {
        if (v === undefined || v === null) fail('an earlier check this one depends on failed');
    }
}

// --------------------------------------------------------------------------
// pictures

function sniff(b) {
    if (b.length >= 8 && b.slice(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) return 'image/png';
    if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
    if (b.length >= 6 && (b.slice(0, 6).toString('latin1') === 'GIF87a' || b.slice(0, 6).toString('latin1') === 'GIF89a')) return 'image/gif';
    if (b.length >= 4 && (b.slice(0, 4).toString('latin1') === 'II*\0' || b.slice(0, 4).toString('latin1') === 'MM\0*')) return 'image/tiff';
    return null;
}

/* {mime, w, h} from a PNG IHDR or a JPEG SOF segment (GIF: logical screen). */
function dims(b, what) {
    const mime = sniff(b);
    if (mime === 'image/png') {
        ok(b.length >= 24 && b.toString('latin1', 12, 16) === 'IHDR', `${what}: PNG without IHDR`);
        return { mime, w: b.readUInt32BE(16), h: b.readUInt32BE(20) };
    }
    if (mime === 'image/jpeg') {
        let i = 2;
        while (i + 4 <= b.length) {
            if (b[i] !== 0xff) fail(`${what}: JPEG marker expected at offset ${i}`);
            const m = b[i + 1];
            if (m === 0xff) { i++; continue; }
            if (m === 0x01 || (m >= 0xd0 && m <= 0xd8)) { i += 2; continue; }
            if (m === 0xd9 || m === 0xda) break;
            const len = b.readUInt16BE(i + 2);
            if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
                ok(i + 9 <= b.length, `${what}: truncated SOF`);
                return { mime, h: b.readUInt16BE(i + 5), w: b.readUInt16BE(i + 7) };
            }
            i += 2 + len;
        }
        fail(`${what}: JPEG without a SOF segment`);
    }
    if (mime === 'image/gif') return { mime, w: b.readUInt16LE(6), h: b.readUInt16LE(8) };
    fail(`${what}: not a PNG/JPEG/GIF picture: ${b.slice(0, 12).toString('hex')}`);
    return null;
}

/* What `fit inside bw x bh, keep the aspect, never enlarge` gives (0 = no bound). */
function fitDims(w, h, bw, bh) {
    let s = 1.0;
    if (bw) s = Math.min(s, bw / w);
    if (bh) s = Math.min(s, bh / h);
    return [Math.max(1, Math.round(w * s)), Math.max(1, Math.round(h * s))];
}

function assertFits(got, w, h, bw, bh, what) {
    const [ww, wh] = fitDims(w, h, bw, bh);
    ok(got.w >= 1 && got.h >= 1, `${what}: ${got.w}x${got.h} has a side of 0`);
    ok(Math.abs(got.w - ww) <= 1 && Math.abs(got.h - wh) <= 1,
        `${what}: ${w}x${h} fit into ${bw || '-'}x${bh || '-'} gave ${got.w}x${got.h}, want about ${ww}x${wh}`);
    if (bw) ok(got.w <= bw, `${what}: ${got.w}x${got.h} wider than ${bw}`);
    if (bh) ok(got.h <= bh, `${what}: ${got.w}x${got.h} taller than ${bh}`);
    ok(got.w <= w && got.h <= h, `${what}: ${got.w}x${got.h} larger than the original ${w}x${h}`);
}

const CRC_TABLE = (() => {
    const t = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
        t[n] = c;
    }
    return t;
})();

function crc32(buf) {
    let c = -1;
    for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
    return (c ^ -1) >>> 0;
}

function pngChunk(type, payload) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(payload.length);
    const tp = Buffer.concat([Buffer.from(type, 'latin1'), payload]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(tp));
    return Buffer.concat([len, tp, crc]);
}

/* An 8-bit RGB PNG w x h: a two-colour gradient (so the bytes differ per call). */
function makePng(w, h, rgb) {
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
    const raw = Buffer.alloc((w * 3 + 1) * h);
    for (let y = 0; y < h; y++) {
        const row = y * (w * 3 + 1);
        raw[row] = 0;
        for (let x = 0; x < w; x++) {
            raw[row + 1 + x * 3] = (rgb[0] + x) & 0xff;
            raw[row + 2 + x * 3] = (rgb[1] + y) & 0xff;
            raw[row + 3 + x * 3] = rgb[2];
        }
    }
    return Buffer.concat([
        Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
        pngChunk('IHDR', ihdr),
        pngChunk('IDAT', zlib.deflateSync(raw, { level: 9 })),
        pngChunk('IEND', Buffer.alloc(0)),
    ]);
}

/* A Buffer's bytes as an ArrayBuffer of its own (what a browser caller passes). */
function toArrayBuffer(b) {
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
}

// --------------------------------------------------------------------------
// REST, for cross-checks (Node's http; not through the client)

function rest(cfg, method, p, opts = {}) {
    const u = new URL(cfg.url + p);
    const lib = u.protocol === 'https:' ? https : http;
    const user = opts.user || cfg.user;
    const password = opts.password || cfg.password;
    const headers = Object.assign({
        Authorization: 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64'),
        Accept: '*/*',
    }, opts.headers || {});
    let body = opts.body;
    if (body !== undefined && !Buffer.isBuffer(body)) {
        body = Buffer.from(JSON.stringify(body));
        headers['Content-Type'] = headers['Content-Type'] || 'application/json';
    }
    if (body !== undefined) headers['Content-Length'] = String(body.length);
    return new Promise((resolve, reject) => {
        const req = lib.request(u, { method, headers, agent: false, timeout: cfg.timeout }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
            res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error(`${method} ${p}: timed out`)));
        req.on('error', reject);
        if (body !== undefined) req.write(body);
        req.end();
    });
}

async function restJson(cfg, method, p, want, opts) {
    const r = await rest(cfg, method, p, opts);
    if (r.status !== want) fail(`REST ${method} ${p}: HTTP ${r.status}, want ${want}: ${bodyText(r.body)}`);
    try {
        return JSON.parse(r.body.toString('utf8'));
    } catch (_) {
        fail(`REST ${method} ${p}: not JSON: ${bodyText(r.body)}`);
    }
    return null;
}

const ENTITY_BODIES = {
    Person: { Firstname: 'Agent', Lastname: 'Client', ContactId: 0 },
    Contact: { Name: 'Agent Client AS' },
    Product: { Name: 'Agent Widget', ERPProductKey: 'AGT-1' },
    Project: { Name: 'Agent Project', ProjectNumber: 'AGT-P1' },
};

async function restCreate(cfg, kind) {
    const j = await restJson(cfg, 'POST', `/api/v1/${kind}`, 201, { body: ENTITY_BODIES[kind] });
    const id = j[`${kind}Id`];
    ok(isPosInt(id), `REST POST ${kind}: no ${kind}Id in ${show(j)}`);
    return id;
}

async function restInfo(cfg, kind, id) {
    return restJson(cfg, 'GET', `/api/v1/${kind}/${id}/ImageInfo`, 200, { headers: { Accept: 'application/json' } });
}

async function restImage(cfg, kind, id) {
    return rest(cfg, 'GET', `/api/v1/${kind}/${id}/Image`);
}

async function restPutImage(cfg, kind, id, bytes) {
    const r = await rest(cfg, 'PUT', `/api/v1/${kind}/${id}/Image`,
        { body: bytes, headers: { 'Content-Type': sniff(bytes) || 'application/octet-stream', Accept: 'application/json' } });
    if (r.status !== 200) fail(`REST PUT ${kind}/${id}/Image: HTTP ${r.status}: ${bodyText(r.body)}`);
    const v = JSON.parse(r.body.toString('utf8'));
    ok(isPosInt(v), `REST PUT ${kind}/${id}/Image answered ${bodyText(r.body)}`);
    return v;
}

async function restSeesImage(cfg, kind, id, blobId, bytes, what) {
    const info = await restInfo(cfg, kind, id);
    eq(info.BlobId, blobId, `${what}: REST ImageInfo BlobId`);
    eq(info.OriginalSize, bytes.length, `${what}: REST ImageInfo OriginalSize`);
    eq(info.MimeType, sniff(bytes), `${what}: REST ImageInfo MimeType`);
    const r = await restImage(cfg, kind, id);
    eq(r.status, 200, `${what}: REST GET Image status`);
    bytesEq(r.body, bytes, `${what}: REST GET Image bytes`);
}

// --------------------------------------------------------------------------
// carriers

/* A BlobEntity as the client's converter (Create_BlobEntity_From) exposes it. */
function assertCarrier(c, what) {
    ok(c !== null && typeof c === 'object', `${what}: not a carrier: ${show(c)}`);
    for (const f of ['blobId', 'blobSize', 'originalSize']) {
        ok(typeof c[f] === 'number' && Number.isInteger(c[f]) && c[f] >= 0, `${what}: ${f} = ${show(c[f])}`);
    }
    for (const f of ['description', 'extraInfo', 'mimeType', 'conceptualType']) {
        ok(typeof c[f] === 'string', `${what}: ${f} = ${show(c[f])} is not a string`);
    }
    for (const f of ['isEncrypted', 'isZipped']) {
        ok(typeof c[f] === 'boolean', `${what}: ${f} = ${show(c[f])} is not a boolean`);
    }
    ok(c.tableRight && typeof c.tableRight === 'object', `${what}: no tableRight`);
    ok(c.fieldProperties && typeof c.fieldProperties === 'object', `${what}: no fieldProperties`);
}

function assertEmptyCarrier(c, what) {
    assertCarrier(c, what);
    eq(c.blobId, 0, `${what}: blobId`);
    eq(c.blobSize, 0, `${what}: blobSize`);
    eq(c.originalSize, 0, `${what}: originalSize`);
    eq(c.mimeType, '', `${what}: mimeType`);
    eq(c.description, '', `${what}: description`);
    eq(c.createdBy, null, `${what}: createdBy`);
    eq(c.updatedBy, null, `${what}: updatedBy`);
}

function assertRecent(d, what) {
    ok(d instanceof Date && !isNaN(d), `${what}: not a date: ${show(d)}`);
    const skew = Math.abs(Date.now() - d.getTime());
    ok(skew < 24 * 3600 * 1000, `${what}: ${d.toISOString()} is not about now`);
}

/* A carrier for a stored picture made by user `user`. */
function assertImageCarrier(c, bytes, cfg, what) {
    assertCarrier(c, what);
    ok(isPosInt(c.blobId), `${what}: blobId ${show(c.blobId)}`);
    eq(c.mimeType, sniff(bytes), `${what}: mimeType`);
    eq(c.originalSize, bytes.length, `${what}: originalSize`);
    ok(c.blobSize > 0, `${what}: blobSize ${c.blobSize}`);
    ok(c.createdBy && typeof c.createdBy === 'object', `${what}: createdBy ${show(c.createdBy)}`);
    ok(c.updatedBy && typeof c.updatedBy === 'object', `${what}: updatedBy ${show(c.updatedBy)}`);
    eq(c.updatedBy.name, cfg.user, `${what}: updatedBy.name`);
    assertRecent(c.createdDate, `${what}: createdDate`);
    assertRecent(c.updatedDate, `${what}: updatedDate`);
}

// --------------------------------------------------------------------------
// the run

async function main() {
    const argv = process.argv.slice(2);
    if (argv.includes('--help') || argv.includes('-h')) {
        usage();
        return 0;
    }
    if (argv.includes('--list')) {
        for (const n of checkNames()) console.log(n);
        return 0;
    }
    const cfg = readConfig(argv);

    let webapi, ReturnBlobType;
    try {
        webapi = require('@superoffice/webapi');
        ReturnBlobType = require('@superoffice/webapi/WebApiBase.js').ReturnBlobType;
    } catch (e) {
        process.stderr.write(`blob_agent.js: cannot load @superoffice/webapi (run npm ci in ${HERE}): ${e.message}\n`);
        return 2;
    }
    const { BLOBAgent } = webapi;
    const AS_B64 = { returnBlobAs: ReturnBlobType.AsBase64 };

    const files = {};
    for (const [k, f] of Object.entries(cfg.files)) {
        try {
            files[k] = fs.readFileSync(f);
        } catch (e) {
            usage(`cannot read ${f}: ${e.message}`);
            return 2;
        }
        if (!sniff(files[k])) {
            usage(`${f} is not a PNG/JPEG`);
            return 2;
        }
    }
    const jpeg = files.jpeg;
    const jpegDims = dims(jpeg, cfg.files.jpeg);
    if (jpegDims.w <= 200 && jpegDims.h <= 200) {
        usage(`${cfg.files.jpeg} must be larger than 200 px on a side (it is ${jpegDims.w}x${jpegDims.h})`);
        return 2;
    }
    const pngAlphaDims = dims(files.pngAlpha, cfg.files.pngAlpha);

    const makeAgent = (user, password) => new BLOBAgent({
        baseUrl: cfg.url,
        axiosConfig: {
            auth: { username: user, password: password },
            proxy: false, // the server is named by the URL; no HTTP(S)_PROXY detour
            timeout: cfg.timeout,
        },
    });
    const agent = makeAgent(cfg.user, cfg.password);

    // -- reachability: fail fast when nothing listens
    const up = await check('connect', async () => {
        const r = await rest(cfg, 'GET', '/api/v1/TimeZone', { headers: { Accept: 'application/json' } });
        ok(r.status === 200, `GET /api/v1/TimeZone: HTTP ${r.status}: ${bodyText(r.body)}`);
    });
    if (!up) return finish();

    // -- entities: given ones, else created via REST
    const ids = Object.assign({}, cfg.ids);
    for (const k of KINDS) {
        if (!ids[k]) {
            try {
                ids[k] = await restCreate(cfg, k);
            } catch (e) {
                console.log(`FAIL setup.create${k}: ${oneLine(describe(e))}`);
                results.failed++;
            }
        }
    }

    // ---------------------------------------------------------------- records
    let def = null;
    await check('createDefaultBlobEntity', async () => {
        def = await agent.createDefaultBlobEntityAsync();
        assertEmptyCarrier(def, 'default carrier');
        eq(def.tableRight.mask, 15 /* ETableRight.FULL */, 'tableRight.mask (FULL for an editor)');
    });

    let saved = null;
    await check('saveBlobEntity.new', async () => {
        needs(def);
        // the default carrier as the converter made it (camelCase, Date objects,
        // tableRight/fieldProperties of numbers), with the client fields set
        const e = Object.assign({}, def, { description: 'agent made me', extraInfo: 'xi-1', conceptualType: 'PHOTO' });
        saved = await agent.saveBlobEntityAsync(e);
        assertCarrier(saved, 'saved');
        ok(isPosInt(saved.blobId), `blobId ${show(saved.blobId)}`);
        eq(saved.description, 'agent made me', 'description');
        eq(saved.extraInfo, 'xi-1', 'extraInfo');
        eq(saved.conceptualType, 'PHOTO', 'conceptualType');
        eq(saved.mimeType, '', 'mimeType (no bytes yet)');
        eq(saved.originalSize, 0, 'originalSize (no bytes yet)');
        ok(saved.createdBy, 'createdBy is null');
        eq(saved.createdBy.name, cfg.user, 'createdBy.name');
        assertRecent(saved.createdDate, 'createdDate');
    });

    let minimal = null;
    await check('saveBlobEntity.defaultConceptualType', async () => {
        minimal = await agent.saveBlobEntityAsync({ description: 'minimal' });
        assertCarrier(minimal, 'saved');
        ok(isPosInt(minimal.blobId), `blobId ${show(minimal.blobId)}`);
        ok(!saved || minimal.blobId !== saved.blobId, 'same blobId as another new record');
        eq(minimal.description, 'minimal', 'description');
        eq(minimal.conceptualType, 'PHOTO', 'conceptualType');
    });

    await check('saveBlobEntity.update', async () => {
        needs(saved);
        const e = Object.assign({}, saved, { description: 'agent changed me', extraInfo: 'xi-2' });
        const u = await agent.saveBlobEntityAsync(e);
        assertCarrier(u, 'updated');
        eq(u.blobId, saved.blobId, 'blobId');
        eq(u.description, 'agent changed me', 'description');
        eq(u.extraInfo, 'xi-2', 'extraInfo');
        eq(u.createdBy && u.createdBy.name, cfg.user, 'createdBy.name');
        eq(u.updatedBy && u.updatedBy.name, cfg.user, 'updatedBy.name');
        ok(u.updatedDate >= u.createdDate, 'updatedDate before createdDate');
        saved = u;
    });

    await check('saveBlobEntity.missing', async () => {
        const r = await agent.saveBlobEntityAsync({ blobId: MISSING_BLOB, description: 'nobody' });
        eq(r, null, 'answer for a record that does not exist');
    });

    await check('getBlobEntity.existing', async () => {
        needs(saved);
        const g = await agent.getBlobEntityAsync(saved.blobId);
        assertCarrier(g, 'got');
        eq(g.blobId, saved.blobId, 'blobId');
        eq(g.description, 'agent changed me', 'description');
        eq(g.extraInfo, 'xi-2', 'extraInfo');
        eq(g.conceptualType, 'PHOTO', 'conceptualType');
        eq(g.createdBy && g.createdBy.name, cfg.user, 'createdBy.name');
    });

    await check('getBlobEntity.missing', async () => {
        eq(await agent.getBlobEntityAsync(MISSING_BLOB), null, 'answer');
    });

    // -- bytes of an unlinked record
    const png = files.png;
    await check('setBlobStream', async () => {
        needs(saved);
        const r = await agent.setBlobStreamAsync(saved.blobId, toArrayBuffer(png));
        ok(r === '' || r === undefined || r === null, `void method answered ${show(r)}`);
        const g = await agent.getBlobEntityAsync(saved.blobId);
        assertImageCarrier(g, png, cfg, 'after setBlobStream');
        eq(g.description, 'agent changed me', 'description kept');
        eq(g.conceptualType, 'PHOTO', 'conceptualType kept');
    });

    await check('getBlobStream.arraybuffer', async () => {
        needs(saved);
        bytesEq(await agent.getBlobStreamAsync(saved.blobId), png, 'stream');
    });

    await check('getBlobStream.base64', async () => {
        needs(saved);
        b64Eq(await agent.getBlobStreamAsync(saved.blobId, AS_B64), png, 'stream');
    });

    await check('setBlobStream.replace', async () => {
        needs(saved);
        // the request-object overload; a Node Buffer as the stream
        await agent.setBlobStreamAsync({ blobEntityId: saved.blobId, stream: files.jpegSmall });
        bytesEq(await agent.getBlobStreamAsync({ blobEntityId: saved.blobId }), files.jpegSmall, 'stream');
        const g = await agent.getBlobEntityAsync(saved.blobId);
        eq(g.mimeType, 'image/jpeg', 'mimeType');
        eq(g.originalSize, files.jpegSmall.length, 'originalSize');
    });

    await check('setBlobStream.notImage', async () => {
        needs(saved);
        await rejects(agent.setBlobStreamAsync(saved.blobId, toArrayBuffer(Buffer.from('plain text, not a picture'))),
            400, 'SoBadRequestException', 'text bytes');
        bytesEq(await agent.getBlobStreamAsync(saved.blobId), files.jpegSmall, 'stream unchanged');
    });

    await check('setBlobStream.missingRecord', async () => {
        await rejects(agent.setBlobStreamAsync(MISSING_BLOB, toArrayBuffer(png)), 400, 'SoBadRequestException', 'no record');
    });

    let streamPerson = null;
    await check('saveImageStream.person', async () => {
        const id = await agent.saveImageStreamAsync('PersonImage', toArrayBuffer(jpeg), 'person portrait');
        ok(isPosInt(id), `answer ${show(id)} is not a BlobId`);
        const g = await agent.getBlobEntityAsync(id);
        assertImageCarrier(g, jpeg, cfg, 'record');
        eq(g.blobId, id, 'blobId');
        eq(g.description, 'person portrait', 'description');
        eq(g.conceptualType, 'PERSONPHOTO', 'conceptualType');
        eq(g.createdBy && g.createdBy.name, cfg.user, 'createdBy.name');
        bytesEq(await agent.getBlobStreamAsync(id), jpeg, 'stream');
        streamPerson = id;
    });

    await check('saveImageStream.project', async () => {
        const id = await agent.saveImageStreamAsync({ type: 'ProjectImage', image: toArrayBuffer(png), description: 'project pic' });
        ok(isPosInt(id), `answer ${show(id)} is not a BlobId`);
        ok(id !== streamPerson, 'same BlobId twice');
        const g = await agent.getBlobEntityAsync(id);
        eq(g.description, 'project pic', 'description');
        eq(g.conceptualType, 'PHOTO', 'conceptualType');
        eq(g.mimeType, 'image/png', 'mimeType');
        b64Eq(await agent.getBlobStreamAsync(id, AS_B64), png, 'stream');
    });

    // the project image library: SaveProjectImage adds, crmblob's REST route lists
    const libraryIds = async () => (await restJson(cfg, 'GET', '/api/v1/ProjectImageLibrary', 200,
        { headers: { Accept: 'application/json' } })).value.map((v) => v.BlobId);
    const savedProjectImage = async (save, bytes, description) => {
        const before = new Set(await libraryIds());
        await save(); // 204: the client gives nothing back
        const added = (await libraryIds()).filter((id) => !before.has(id));
        eq(added.length, 1, 'records added to the library');
        const g = await agent.getBlobEntityAsync(added[0]);
        eq(g.description, description, 'description');
        eq(g.conceptualType, 'PHOTO', 'conceptualType');
        bytesEq(await agent.getBlobStreamAsync(added[0]), bytes, 'stream');
        const r = await rest(cfg, 'GET', `/api/v1/ProjectImageLibrary/${added[0]}`);
        eq(r.status, 200, 'REST GET of the library picture');
        bytesEq(r.body, bytes, 'REST bytes');
        return added[0];
    };
    let libraryPicture = null;
    await check('saveProjectImage', async () => {
        libraryPicture = await savedProjectImage(
            () => agent.saveProjectImageAsync('library jpeg', toArrayBuffer(jpeg)), jpeg, 'library jpeg');
    });

    await check('saveProjectImage.request', async () => {
        await savedProjectImage(
            () => agent.saveProjectImageAsync({ description: 'library png', image: toArrayBuffer(png) }),
            png, 'library png');
    });

    await check('saveProjectImage.notImage', async () => {
        const before = await libraryIds();
        await rejects(agent.saveProjectImageAsync('text', toArrayBuffer(Buffer.from('plain text, not a picture'))),
            400, 'SoBadRequestException', 'text bytes');
        eq((await libraryIds()).length, before.length, 'library size');
    });

    await check('outOfScope.null', async () => {
        eq(await agent.getBlobEntityOnCountryAsync(1), null, 'getBlobEntityOnCountry');
        emptyBinary(await agent.getQuoteLineImageAsync(1), 'getQuoteLineImage raw');
        eq(await agent.getQuoteLineImageAsync(1, AS_B64), null, 'getQuoteLineImage base64');
        emptyBinary(await agent.getChatImageWithSizeAsync(1, 64, 64), 'getChatImageWithSize raw');
        eq(await agent.getChatImageWithSizeAsync(1, 64, 64, AS_B64), null, 'getChatImageWithSize base64');
    });

    await check('getProductThumbnail.none', async () => {
        needs(ids.Product);
        emptyBinary(await agent.getProductThumbnailAsync(ids.Product), 'raw answer');
        eq(await agent.getProductThumbnailAsync(ids.Product, AS_B64), null, 'base64 answer');
    });

    // ---------------------------------------------------------------- entities
    // the picture each kind gets first, the one it is changed to, and the one
    // set through REST
    const big = makePng(300, 260, [10, 120, 30]);
    const pictures = {
        Person: [jpeg, makePng(40, 30, [200, 10, 10]), files.jpegSmall],
        Contact: [files.pngAlpha, files.jpegSmall, makePng(36, 20, [5, 5, 200])],
        Product: [jpeg, makePng(44, 33, [90, 90, 0]), png],
        Project: [jpeg, png, makePng(24, 24, [0, 200, 200])],
    };
    const replacement = {
        Person: makePng(20, 30, [1, 2, 3]),
        Contact: makePng(21, 30, [4, 5, 6]),
        Product: makePng(22, 30, [7, 8, 9]),
        Project: makePng(23, 30, [10, 11, 12]),
    };
    const linked = {}; // kind -> BlobId of its current image (set through REST)

    for (const k of KINDS) {
        const id = ids[k];
        const [first, changed, viaRest] = pictures[k];
        const set = (i, b) => agent[`set${k}ImageAsync`](i, b);
        const get = (i, o) => agent[`get${k}ImageAsync`](i, o);
        const onX = (i) => agent[`getBlobEntityOn${k}Async`](i);
        const change = (i, b) => agent[`change${k}ImageAsync`](i, b);
        const conceptual = k === 'Person' ? 'PERSONPHOTO' : 'PHOTO';
        const linkType = `${k}Image`;
        let carrier = null;

        await check(`getBlobEntityOn${k}.noImage`, async () => {
            needs(id);
            assertEmptyCarrier(await onX(id), 'carrier of an entity without image');
        });

        await check(`get${k}Image.noImage`, async () => {
            needs(id);
            emptyBinary(await get(id), 'raw answer');
            eq(await get(id, AS_B64), null, 'base64 answer');
        });

        let didSet = false;
        await check(`set${k}Image`, async () => {
            needs(id);
            const r = await set(id, toArrayBuffer(first));
            ok(r === '' || r === undefined || r === null, `void method answered ${show(r)}`);
            didSet = true;
        });

        await check(`get${k}Image.arraybuffer`, async () => {
            ok(didSet, `set${k}Image failed`);
            bytesEq(await get(id), first, 'image');
        });

        await check(`get${k}Image.base64`, async () => {
            ok(didSet, `set${k}Image failed`);
            // the request-object overload
            b64Eq(await get({ [`${k.toLowerCase()}Id`]: id }, AS_B64), first, 'image');
        });

        await check(`getBlobEntityOn${k}`, async () => {
            ok(didSet, `set${k}Image failed`);
            carrier = await onX(id);
            assertImageCarrier(carrier, first, cfg, 'carrier');
            eq(carrier.createdBy.name, cfg.user, 'createdBy.name');
            eq(carrier.conceptualType, conceptual, 'conceptualType');
            const g = await agent.getBlobEntityAsync(carrier.blobId);
            eq(g && g.blobId, carrier.blobId, 'GetBlobEntity of that BlobId');
            bytesEq(await agent.getBlobStreamAsync(carrier.blobId), first, 'GetBlobStream of that BlobId');
        });

        await check(`rest.${k}.seesAgentImage`, async () => {
            needs(carrier);
            await restSeesImage(cfg, k, id, carrier.blobId, first, 'REST');
        });

        await check(`set${k}Image.replace`, async () => {
            needs(carrier);
            await set(id, toArrayBuffer(replacement[k]));
            const c = await onX(id);
            eq(c.blobId, carrier.blobId, 'blobId (replacing keeps it)');
            eq(c.mimeType, 'image/png', 'mimeType');
            eq(c.originalSize, replacement[k].length, 'originalSize');
            try {
                bytesEq(await get(id), replacement[k], 'image');
                await restSeesImage(cfg, k, id, carrier.blobId, replacement[k], 'REST');
            } finally {
                await set(id, toArrayBuffer(first)); // back to `first` for the sized checks
            }
            bytesEq(await get(id), first, 'image set back');
        });

        if (SIZED_KINDS.includes(k)) {
            const sized = (w, h, o) => agent[`get${k}ImageWithSizeAsync`](id, w, h, o);
            const fd = dims(first, `${k} picture`);
            const bw = Math.max(1, Math.floor(fd.w / 2)), bh = Math.max(1, Math.floor(fd.h / 2));
            const sizedCheck = (name, w, h) => check(name, async () => {
                ok(didSet, `set${k}Image failed`);
                const b = asBytes(await sized(w, h), 'answer');
                const d = dims(b, 'answer');
                eq(d.mime, fd.mime, 'picture type (same as stored)');
                assertFits(d, fd.w, fd.h, w, h, 'size');
                return d;
            });
            await sizedCheck(`get${k}ImageWithSize.fit`, bw, bh + 7);
            await sizedCheck(`get${k}ImageWithSize.oneSide`, 0, bh);
            await check(`get${k}ImageWithSize.noEnlarge`, async () => {
                ok(didSet, `set${k}Image failed`);
                const b = asBytes(await sized(fd.w * 3, fd.h * 3), 'answer');
                const d = dims(b, 'answer');
                eq(`${d.w}x${d.h}`, `${fd.w}x${fd.h}`, 'size');
                eq(d.mime, fd.mime, 'picture type');
            });
            await check(`get${k}ImageWithSize.base64`, async () => {
                ok(didSet, `set${k}Image failed`);
                const s = await sized(bw, 0, AS_B64);
                ok(typeof s === 'string', `not a base64 string: ${show(s)}`);
                const d = dims(Buffer.from(s, 'base64'), 'decoded answer');
                assertFits(d, fd.w, fd.h, bw, 0, 'size');
            });
        }

        let changedId = null;
        await check(`change${k}Image.saved`, async () => {
            needs(carrier);
            changedId = await agent.saveImageStreamAsync(linkType, toArrayBuffer(changed), `${k} changed`);
            ok(isPosInt(changedId), `SaveImageStream answered ${show(changedId)}`);
            const r = await change(id, changedId);
            ok(r === '' || r === undefined || r === null, `void method answered ${show(r)}`);
            const c = await onX(id);
            assertImageCarrier(c, changed, cfg, 'carrier');
            eq(c.blobId, changedId, 'blobId');
            eq(c.description, `${k} changed`, 'description');
            bytesEq(await get(id), changed, 'image');
        });

        await check(`rest.${k}.seesChangedImage`, async () => {
            needs(changedId);
            await restSeesImage(cfg, k, id, changedId, changed, 'REST');
        });

        await check(`change${k}Image.zero`, async () => {
            needs(changedId);
            await change(id, 0);
            assertEmptyCarrier(await onX(id), 'carrier after unlinking');
            emptyBinary(await get(id), 'raw image answer');
            eq(await get(id, AS_B64), null, 'base64 image answer');
            const r = await restImage(cfg, k, id);
            eq(r.status, 404, 'REST GET Image status');
            eq((await restInfo(cfg, k, id)).BlobId, 0, 'REST ImageInfo BlobId');
            // the record itself stays (unlinked) until the grace period ends
            const g = await agent.getBlobEntityAsync(changedId);
            eq(g && g.blobId, changedId, 'GetBlobEntity of the unlinked record');
        });

        await check(`agent.${k}.seesRestImage`, async () => {
            needs(id);
            const blobId = await restPutImage(cfg, k, id, viaRest);
            const c = await onX(id);
            assertImageCarrier(c, viaRest, cfg, 'carrier');
            eq(c.blobId, blobId, 'blobId (REST PUT answer)');
            bytesEq(await get(id), viaRest, 'image');
            b64Eq(await get(id, AS_B64), viaRest, 'image');
            linked[k] = blobId;
        });

        await check(`getBlobEntityOn${k}.missing`, async () => {
            eq(await onX(MISSING_ID), null, 'answer for an entity that does not exist');
        });

        await check(`get${k}Image.missingEntity`, async () => {
            emptyBinary(await get(MISSING_ID), 'raw answer');
            eq(await get(MISSING_ID, AS_B64), null, 'base64 answer');
        });

        await check(`set${k}Image.missingEntity`, async () => {
            await rejects(set(MISSING_ID, toArrayBuffer(png)), 400, 'SoBadRequestException', 'entity absent');
        });
    }

    // ---------------------------------------------------------------- thumbnails
    const prodId = ids.Product;
    let derived = null;
    await check('getProductThumbnail.derived', async () => {
        needs(prodId);
        // the product's image is a full-size picture again
        await agent.setProductImageAsync(prodId, toArrayBuffer(jpeg));
        const b = asBytes(await agent.getProductThumbnailAsync(prodId), 'answer');
        derived = dims(b, 'thumbnail');
        assertFits(derived, jpegDims.w, jpegDims.h, 200, 200, 'thumbnail made from the product image');
    });

    await check('setProductThumbnail', async () => {
        needs(prodId);
        const r = await agent.setProductThumbnailAsync(prodId, toArrayBuffer(big));
        ok(r === '' || r === undefined || r === null, `void method answered ${show(r)}`);
        // the product image is not touched
        bytesEq(await agent.getProductImageAsync(prodId), jpeg, 'product image');
    });

    await check('getProductThumbnail.explicit', async () => {
        needs(prodId);
        const b = asBytes(await agent.getProductThumbnailAsync(prodId), 'answer');
        const d = dims(b, 'thumbnail');
        ok(d.w <= 200 && d.h <= 200, `thumbnail is ${d.w}x${d.h}`);
        assertFits(d, 300, 260, 200, 200, 'thumbnail from a 300x260 picture');
    });

    await check('getProductThumbnail.base64', async () => {
        needs(prodId);
        const s = await agent.getProductThumbnailAsync({ productId: prodId }, AS_B64);
        ok(typeof s === 'string', `not a base64 string: ${show(s)}`);
        const d = dims(Buffer.from(s, 'base64'), 'decoded thumbnail');
        assertFits(d, 300, 260, 200, 200, 'thumbnail');
    });

    await check('setProductThumbnail.missingEntity', async () => {
        await rejects(agent.setProductThumbnailAsync(MISSING_ID, toArrayBuffer(png)), 400, 'SoBadRequestException', 'product absent');
    });

    // ---------------------------------------------------------------- conflicts, delete
    await check('changeImage.conflict', async () => {
        needs(linked.Project, ids.Contact);
        const before = await agent.getBlobEntityOnContactAsync(ids.Contact);
        await rejects(agent.changeContactImageAsync(ids.Contact, linked.Project), 409, 'SoConflictException',
            "linking the project's record to the contact");
        eq((await agent.getBlobEntityOnContactAsync(ids.Contact)).blobId, before.blobId, 'contact blobId unchanged');
        eq((await agent.getBlobEntityOnProjectAsync(ids.Project)).blobId, linked.Project, 'project blobId unchanged');
    });

    await check('setBlobStream.linked', async () => {
        needs(linked.Person);
        const pic = makePng(30, 40, [33, 66, 99]);
        await agent.setBlobStreamAsync(linked.Person, toArrayBuffer(pic));
        await restSeesImage(cfg, 'Person', ids.Person, linked.Person, pic, 'REST');
        bytesEq(await agent.getPersonImageAsync(ids.Person), pic, 'GetPersonImage');
        const c = await agent.getBlobEntityOnPersonAsync(ids.Person);
        eq(c.mimeType, 'image/png', 'mimeType');
        eq(c.originalSize, pic.length, 'originalSize');
    });

    await check('deleteBlobEntity.linked', async () => {
        needs(linked.Person);
        const r = await agent.deleteBlobEntityAsync(linked.Person);
        ok(r === '' || r === undefined || r === null, `void method answered ${show(r)}`);
        eq(await agent.getBlobEntityAsync(linked.Person), null, 'GetBlobEntity after delete');
        eq((await restImage(cfg, 'Person', ids.Person)).status, 404, 'REST GET Image status');
        eq((await restInfo(cfg, 'Person', ids.Person)).BlobId, 0, 'REST ImageInfo BlobId');
        assertEmptyCarrier(await agent.getBlobEntityOnPersonAsync(ids.Person), 'GetBlobEntityOnPerson');
        emptyBinary(await agent.getPersonImageAsync(ids.Person), 'GetPersonImage');
    });

    await check('deleteBlobEntity.unlinked', async () => {
        needs(minimal);
        await agent.deleteBlobEntityAsync(minimal.blobId);
        eq(await agent.getBlobEntityAsync(minimal.blobId), null, 'GetBlobEntity after delete');
        emptyBinary(await agent.getBlobStreamAsync(minimal.blobId), 'GetBlobStream after delete');
    });

    await check('deleteBlobEntity.missing', async () => {
        const r = await agent.deleteBlobEntityAsync(MISSING_BLOB);
        ok(r === '' || r === undefined || r === null, `answered ${show(r)}`);
    });

    // ---------------------------------------------------------------- auth, rights
    await check('auth.badPassword', async () => {
        const bad = makeAgent(cfg.user, cfg.password + '-wrong');
        await rejects(bad.getBlobEntityAsync(1), 401, 'SoUnauthorizedException', 'wrong password');
    });

    const haveViewer = cfg.viewerUser && cfg.viewerPassword;
    const viewer = haveViewer ? makeAgent(cfg.viewerUser, cfg.viewerPassword) : null;
    const needViewer = () => {
        if (!haveViewer) throw new Skip('no CRMBLOB_VIEWER_USER / CRMBLOB_VIEWER_PASSWORD');
    };

    await check('viewer.get', async () => {
        needViewer();
        needs(linked.Contact);
        const c = await viewer.getBlobEntityOnContactAsync(ids.Contact);
        eq(c.blobId, linked.Contact, 'blobId');
        eq(c.tableRight && c.tableRight.mask, 1 /* ETableRight.Select */, 'tableRight.mask for a viewer');
        bytesEq(await viewer.getContactImageAsync(ids.Contact), pictures.Contact[2], 'GetContactImage');
        assertEmptyCarrier(await viewer.createDefaultBlobEntityAsync(), 'CreateDefaultBlobEntity');
    });

    await check('viewer.saveBlobEntity', async () => {
        needViewer();
        await rejects(viewer.saveBlobEntityAsync({ description: 'viewer' }), 403, 'SoAccessDeniedException', 'SaveBlobEntity');
    });

    await check('viewer.setPersonImage', async () => {
        needViewer();
        needs(ids.Person);
        await rejects(viewer.setPersonImageAsync(ids.Person, toArrayBuffer(png)), 403, 'SoAccessDeniedException', 'SetPersonImage');
        eq((await restImage(cfg, 'Person', ids.Person)).status, 404, 'person still has no image');
    });

    await check('viewer.changePersonImage', async () => {
        needViewer();
        needs(ids.Person, streamPerson);
        await rejects(viewer.changePersonImageAsync(ids.Person, streamPerson), 403, 'SoAccessDeniedException', 'ChangePersonImage');
    });

    await check('viewer.deleteBlobEntity', async () => {
        needViewer();
        needs(linked.Contact);
        await rejects(viewer.deleteBlobEntityAsync(linked.Contact), 403, 'SoAccessDeniedException', 'DeleteBlobEntity');
        eq((await agent.getBlobEntityAsync(linked.Contact)).blobId, linked.Contact, 'record still there');
    });

    return finish();
}

function finish() {
    console.log(JSON.stringify(results));
    return results.failed > 0 ? 1 : 0;
}

main().then(
    (code) => process.exit(code),
    (e) => {
        console.log(`FAIL internal: ${oneLine(describe(e))}`);
        results.failed++;
        console.log(JSON.stringify(results));
        process.exit(1);
    },
);
