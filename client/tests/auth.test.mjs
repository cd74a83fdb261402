// Unit tests of the sign-in module: tokens, the session, the development sign-in and the
// Cognito hosted-UI flow (URL building, PKCE, token parsing). Cognito itself is not
// reachable from here: these check what the page sends and how it reads the answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { webcrypto } from 'node:crypto';
import {
  DevSignInUnavailable,
  EXPIRY_SKEW_MS,
  PKCE_KEY,
  SESSION_KEY,
  SignInRequired,
  TokenSource,
  base64UrlEncode,
  bearer,
  beginCognitoSignIn,
  cognitoAuthorizeURL,
  cognitoCodeRequest,
  cognitoLogoutURL,
  cognitoRefreshRequest,
  completeCognitoSignIn,
  decodeJwt,
  devSignIn,
  expiryMs,
  loadSession,
  parseCallback,
  pkceChallenge,
  refreshCognito,
  replicacheName,
  resolveAuth,
  saveSession,
  sessionFromTokens,
} from '../src/auth.js';

const crypto = globalThis.crypto ?? webcrypto;

/** An unsigned JWT with these claims (the page never verifies signatures). */
function jwt(claims) {
  const enc = (o) => base64UrlEncode(new TextEncoder().encode(JSON.stringify(o)));
  return `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}.c2lnbmF0dXJl`;
}

function memoryStorage() {
  const m = new Map();
  return {
    map: m,
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => void m.set(k, String(v)),
    removeItem: (k) => void m.delete(k),
  };
}

/** A fetch stand-in that records requests and answers from `answer(url, init)`. */
function fakeFetch(answer) {
  const calls = [];
  const fetchImpl = async (url, init) => {
    calls.push({ url, init });
    const { status = 200, json, text } = await answer(url, init, calls.length);
    const body = text ?? JSON.stringify(json);
    return { status, ok: status === 200, json: async () => JSON.parse(body), text: async () => body };
  };
  fetchImpl.calls = calls;
  return fetchImpl;
}

const cognitoConfig = () =>
  resolveAuth(
    { cognito: { domain: 'counter-demo.auth.eu-west-1.amazoncognito.com', clientId: 'abc123client' } },
    { origin: 'https://app.example.com' },
    '/',
  ).cognito;

test('JWT claims are read (not verified); junk is null', () => {
  const t = jwt({ sub: 'alice', exp: 1_900_000_000, iat: 1_899_999_000, name: 'Ålice' });
  assert.deepEqual(decodeJwt(t), { sub: 'alice', exp: 1_900_000_000, iat: 1_899_999_000, name: 'Ålice' });
  for (const junk of [undefined, '', 'a.b', 'a.b.c.d', 'x.%%%.y', `x.${btoa('[1]')}.y`, `x.${btoa('nope')}.y`]) {
    assert.equal(decodeJwt(junk), null, String(junk));
  }
  assert.equal(bearer('t0k'), 'Bearer t0k');
});

test('expiresAt in seconds, milliseconds or ISO form; else the exp claim', () => {
  const t = jwt({ sub: 'a', exp: 1_900_000_000 });
  assert.equal(expiryMs(1_900_000_123, t), 1_900_000_123_000);
  assert.equal(expiryMs(1_900_000_123_456, t), 1_900_000_123_456);
  assert.equal(expiryMs('1900000123', t), 1_900_000_123_000);
  assert.equal(expiryMs('2030-03-17T17:46:40Z', t), Date.parse('2030-03-17T17:46:40Z'));
  assert.equal(expiryMs(undefined, t), 1_900_000_000_000);
  assert.equal(expiryMs('not a date', t), 1_900_000_000_000);
  assert.equal(expiryMs(undefined, 'opaque'), null);
});

test('the Replicache name is per user and space, and never ambiguous', () => {
  assert.equal(replicacheName('sp4ce', null), 'counter-sp4ce', 'no sign-in: as before');
  assert.equal(replicacheName('sp4ce', 'alice'), 'counter-alice@sp4ce');
  assert.notEqual(replicacheName('sp4ce', 'alice'), replicacheName('sp4ce', 'bob'));
  // "a" in space "b@c" cannot happen (no @ in space IDs) and "a@b" is encoded.
  assert.equal(replicacheName('c', 'a@b'), 'counter-a%40b@c');
  assert.notEqual(replicacheName('b-c', 'a'), replicacheName('c', 'a-b'));
});

test('the session round-trips through storage; malformed ones are dropped', () => {
  const s = memoryStorage();
  assert.equal(loadSession(s), null);
  const session = { provider: 'dev', user: 'alice', label: 'alice', name: 'alice', token: 't', expiresAt: 5 };
  saveSession(s, session);
  assert.deepEqual(loadSession(s), session);
  saveSession(s, null);
  assert.equal(s.map.has(SESSION_KEY), false);
  for (const bad of ['{', '[]', '{"provider":"x","user":"a","token":"t"}', '{"provider":"dev","user":"","token":"t"}']) {
    s.setItem(SESSION_KEY, bad);
    assert.equal(loadSession(s), null, bad);
  }
  assert.equal(loadSession(undefined), null);
  const throwing = { getItem() { throw new Error('denied'); }, setItem() { throw new Error('full'); } };
  assert.equal(loadSession(throwing), null);
  saveSession(throwing, session); // does not throw
});

test('development sign-in: the request, the session, and each refusal', async () => {
  const token = jwt({ sub: 'alice', iat: 1000, exp: 4600 });
  const ok = fakeFetch(() => ({ json: { token, user: 'alice', expiresAt: 4600 } }));
  const session = await devSignIn('http://127.0.0.1:8080', 'alice', ok, 999_000);
  assert.equal(ok.calls[0].url, 'http://127.0.0.1:8080/api/dev/signIn');
  assert.equal(ok.calls[0].init.method, 'POST');
  assert.deepEqual(JSON.parse(ok.calls[0].init.body), { name: 'alice' });
  assert.deepEqual(session, {
    provider: 'dev', user: 'alice', label: 'alice', name: 'alice', token, expiresAt: 4_600_000, issuedAt: 1_000_000,
  });
  // No `user` in the answer: the token's subject.
  const noUser = await devSignIn('h', 'bob', fakeFetch(() => ({ json: { token: jwt({ sub: 'bob' }) } })));
  assert.equal(noUser.user, 'bob');
  assert.equal(noUser.expiresAt, null);

  await assert.rejects(devSignIn('h', 'x', fakeFetch(() => ({ status: 404, json: { error: 'NotFound' } }))), DevSignInUnavailable);
  await assert.rejects(
    devSignIn('h', 'x', fakeFetch(() => ({ status: 400, json: { error: 'BadRequest', message: 'name: too long' } }))),
    (e) => e instanceof SignInRequired && e.message === 'name: too long',
  );
  await assert.rejects(devSignIn('h', 'x', fakeFetch(() => ({ status: 503, text: 'busy' }))), /503/);
  await assert.rejects(devSignIn('h', 'x', fakeFetch(() => ({ json: { user: 'x' } }))), /200/);
  assert.ok(new DevSignInUnavailable() instanceof SignInRequired, 'a 404 means: sign in some other way');
});

test('TokenSource: fresh tokens renew near expiry, once for concurrent callers', async () => {
  let now = 1_000_000;
  const storage = memoryStorage();
  let renewals = 0;
  let release;
  const changes = [];
  const tokens = new TokenSource({
    session: { provider: 'dev', user: 'alice', token: 't0', expiresAt: now + 600_000, issuedAt: now },
    storage,
    now: () => now,
    onChange: (s) => changes.push(s?.token ?? null),
    renew: async (s) => {
      renewals += 1;
      await new Promise((r) => (release = r));
      return { ...s, token: `t${renewals}`, expiresAt: now + 600_000, issuedAt: now };
    },
  });
  assert.equal(await tokens.fresh(), 't0', 'far from expiry: as is');
  now += 600_000 - EXPIRY_SKEW_MS + 1;
  const a = tokens.fresh();
  const b = tokens.renew();
  await new Promise((r) => setTimeout(r, 5));
  release();
  assert.deepEqual(await Promise.all([a, b]), ['t1', 't1']);
  assert.equal(renewals, 1, 'one renewal for both');
  assert.equal(loadSession(storage).token, 't1', 'kept in storage');
  assert.deepEqual(changes, ['t1']);
  assert.equal(tokens.user, 'alice');
});

test('TokenSource: short-lived tokens renew in their last quarter, not at once', async () => {
  let now = 0;
  const tokens = new TokenSource({
    session: { provider: 'dev', user: 'a', token: 't', expiresAt: 8_000, issuedAt: 0 },
    now: () => now,
    renew: async () => null,
  });
  assert.equal(tokens.expiring(), false);
  now = 5_999;
  assert.equal(tokens.expiring(), false);
  now = 6_001;
  assert.equal(tokens.expiring(), true);
  const unknown = new TokenSource({ session: { provider: 'dev', user: 'a', token: 't', expiresAt: null }, renew: async () => null });
  assert.equal(unknown.expiring(), false);
});

test('TokenSource: a refused renewal signs out; an unreachable server keeps the session', async () => {
  const storage = memoryStorage();
  const session = { provider: 'dev', user: 'alice', token: 't0', expiresAt: null };
  let answer = () => {
    throw new TypeError('Failed to fetch');
  };
  const tokens = new TokenSource({ session, storage, renew: async () => answer() });
  saveSession(storage, session);
  assert.equal(await tokens.renew(), null);
  assert.equal(tokens.session, session, 'kept: the server may be back later');
  answer = () => {
    throw new SignInRequired('no');
  };
  assert.equal(await tokens.renew(), null);
  assert.equal(tokens.session, null);
  assert.equal(loadSession(storage), null);
  assert.equal(await tokens.fresh(), null);
  assert.equal(await tokens.renew(), null, 'signed out: nothing to renew');

  const gone = new TokenSource({ session, renew: async () => null });
  assert.equal(await gone.renew(), null);
  assert.equal(gone.session, null, 'a renewal answering null also signs out');
});

test('auth config: Cognito, development, or sign in when the server asks', () => {
  const loc = { origin: 'https://app.example.com' };
  assert.deepEqual(resolveAuth(undefined, loc), { kind: 'auto' });
  assert.deepEqual(resolveAuth({}, loc), { kind: 'auto' });
  assert.deepEqual(resolveAuth([], loc), { kind: 'auto' });
  assert.deepEqual(resolveAuth({ cognito: { domain: 'x' } }, loc), { kind: 'auto' }, 'no clientId');
  assert.deepEqual(resolveAuth({ dev: true }, loc), { kind: 'dev' });
  assert.deepEqual(resolveAuth({ cognito: { domain: 'https://login.example.com/', clientId: ' c1 ' } }, loc, '/app/'), {
    kind: 'cognito',
    cognito: {
      domain: 'https://login.example.com',
      clientId: 'c1',
      redirectUri: 'https://app.example.com/app/',
      logoutUri: 'https://app.example.com/app/',
      scopes: ['openid', 'email', 'profile'],
      tokenUse: 'id',
    },
  });
  const c = resolveAuth(
    {
      cognito: {
        domain: 'auth.example.com',
        clientId: 'c1',
        redirectUri: 'https://app.example.com/callback',
        scopes: 'openid email',
        tokenUse: 'access',
      },
    },
    loc,
  ).cognito;
  assert.equal(c.domain, 'https://auth.example.com');
  assert.equal(c.logoutUri, 'https://app.example.com/callback');
  assert.deepEqual(c.scopes, ['openid', 'email']);
  assert.equal(c.tokenUse, 'access');
});

test('PKCE S256 matches RFC 7636 appendix B; verifiers are 43 URL-safe characters', async () => {
  assert.equal(
    await pkceChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk', crypto),
    'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  );
  const storage = memoryStorage();
  const url = new URL(await beginCognitoSignIn(cognitoConfig(), storage, '/space/abc?pullInterval=off', crypto));
  const pending = JSON.parse(storage.getItem(PKCE_KEY));
  assert.match(pending.verifier, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(pending.returnTo, '/space/abc?pullInterval=off');
  assert.equal(url.searchParams.get('state'), pending.state);
  assert.equal(url.searchParams.get('code_challenge'), await pkceChallenge(pending.verifier, crypto));
});

test('Cognito URLs: authorize, token, refresh, logout', () => {
  const c = cognitoConfig();
  const a = new URL(cognitoAuthorizeURL(c, { state: 'st', challenge: 'ch' }));
  assert.equal(a.origin + a.pathname, 'https://counter-demo.auth.eu-west-1.amazoncognito.com/oauth2/authorize');
  assert.deepEqual(Object.fromEntries(a.searchParams), {
    response_type: 'code',
    client_id: 'abc123client',
    redirect_uri: 'https://app.example.com/',
    scope: 'openid email profile',
    state: 'st',
    code_challenge_method: 'S256',
    code_challenge: 'ch',
  });
  const code = cognitoCodeRequest(c, { code: 'the-code', verifier: 'v' });
  assert.equal(code.url, 'https://counter-demo.auth.eu-west-1.amazoncognito.com/oauth2/token');
  assert.equal(code.init.method, 'POST');
  assert.equal(code.init.headers['content-type'], 'application/x-www-form-urlencoded');
  assert.deepEqual(Object.fromEntries(new URLSearchParams(code.init.body)), {
    client_id: 'abc123client',
    grant_type: 'authorization_code',
    code: 'the-code',
    redirect_uri: 'https://app.example.com/',
    code_verifier: 'v',
  });
  const refresh = cognitoRefreshRequest(c, 'r3fresh');
  assert.deepEqual(Object.fromEntries(new URLSearchParams(refresh.init.body)), {
    client_id: 'abc123client',
    grant_type: 'refresh_token',
    refresh_token: 'r3fresh',
  });
  const out = new URL(cognitoLogoutURL(c));
  assert.equal(out.pathname, '/logout');
  assert.equal(out.searchParams.get('client_id'), 'abc123client');
  assert.equal(out.searchParams.get('logout_uri'), 'https://app.example.com/');
});

test('Cognito token answers become sessions (ID token by default)', () => {
  const c = cognitoConfig();
  const id = jwt({ sub: 'u-123', aud: 'abc123client', email: 'alice@example.com', 'cognito:username': 'alice', exp: 2_000_000, iat: 1_996_400, token_use: 'id' });
  const access = jwt({ sub: 'u-123', client_id: 'abc123client', username: 'alice', exp: 2_000_100, token_use: 'access' });
  const s = sessionFromTokens({ id_token: id, access_token: access, refresh_token: 'r1', expires_in: 3600, token_type: 'Bearer' }, c, null, 5);
  assert.deepEqual(s, {
    provider: 'cognito', user: 'u-123', label: 'alice@example.com', token: id, issuedAt: 1_996_400_000,
    expiresAt: 2_000_000_000, refreshToken: 'r1',
  });
  // A refresh answer has no refresh token: the old one stays.
  const renewed = sessionFromTokens({ id_token: id, access_token: access, expires_in: 3600 }, c, s);
  assert.equal(renewed.refreshToken, 'r1');
  // tokenUse access
  const a = sessionFromTokens({ id_token: id, access_token: access }, { ...c, tokenUse: 'access' });
  assert.equal(a.token, access);
  assert.equal(a.label, 'alice@example.com', 'the label still comes from the ID token');
  // No exp claim: expires_in counts from now.
  const noExp = sessionFromTokens({ id_token: jwt({ sub: 'x' }), expires_in: 60 }, c, null, 1000);
  assert.equal(noExp.expiresAt, 61_000);
  assert.throws(() => sessionFromTokens({ access_token: access }, c), /ID token/);
  assert.throws(() => sessionFromTokens({ id_token: jwt({ aud: 'x' }) }, c), /subject/);
  assert.throws(() => sessionFromTokens({ error: 'invalid_grant' }, c), SignInRequired);
});

test('the callback: only a redirect this tab started is taken, once', async () => {
  assert.equal(parseCallback(''), null);
  assert.equal(parseCallback('?pullInterval=off'), null);
  assert.equal(parseCallback('?code=abc'), null);
  assert.deepEqual(parseCallback('?code=abc&state=s1'), { code: 'abc', state: 's1' });
  assert.deepEqual(parseCallback('?error=access_denied&error_description=nope&state=s1'), {
    error: 'access_denied', description: 'nope', state: 's1',
  });

  const c = cognitoConfig();
  const storage = memoryStorage();
  const id = jwt({ sub: 'u-1', email: 'a@example.com', exp: 3_000_000_000 });
  const token = fakeFetch(() => ({ json: { id_token: id, access_token: 'x', refresh_token: 'r', expires_in: 3600 } }));
  // Nothing started in this tab: not ours.
  assert.equal(await completeCognitoSignIn(c, storage, '?code=abc&state=s1', token), null);
  storage.setItem(PKCE_KEY, JSON.stringify({ verifier: 'v1', state: 's1', returnTo: '/space/x' }));
  assert.equal(await completeCognitoSignIn(c, storage, '?code=abc&state=forged', token), null, 'state mismatch');
  assert.equal(token.calls.length, 0);
  const done = await completeCognitoSignIn(c, storage, '?code=abc&state=s1', token);
  assert.equal(done.returnTo, '/space/x');
  assert.equal(done.session.user, 'u-1');
  assert.equal(done.session.refreshToken, 'r');
  assert.equal(new URLSearchParams(token.calls[0].init.body).get('code_verifier'), 'v1');
  assert.equal(storage.getItem(PKCE_KEY), null, 'used once');
  assert.equal(await completeCognitoSignIn(c, storage, '?code=abc&state=s1', token), null, 'no replay');

  storage.setItem(PKCE_KEY, JSON.stringify({ verifier: 'v', state: 's2', returnTo: '/' }));
  await assert.rejects(
    completeCognitoSignIn(c, storage, '?error=access_denied&error_description=User+cancelled&state=s2', token),
    (e) => e instanceof SignInRequired && /access_denied: User cancelled/.test(e.message),
  );
  storage.setItem(PKCE_KEY, JSON.stringify({ verifier: 'v', state: 's3', returnTo: '/' }));
  const refused = fakeFetch(() => ({ status: 400, json: { error: 'invalid_grant' } }));
  await assert.rejects(completeCognitoSignIn(c, storage, '?code=old&state=s3', refused), SignInRequired);
});

test('refresh: a new session, or sign in again', async () => {
  const c = cognitoConfig();
  const session = { provider: 'cognito', user: 'u-1', token: 'old', refreshToken: 'r1', expiresAt: 1 };
  const id = jwt({ sub: 'u-1', exp: 3_000_000_000 });
  const ok = fakeFetch(() => ({ json: { id_token: id, access_token: 'a', expires_in: 3600 } }));
  const next = await refreshCognito(c, session, ok);
  assert.equal(next.token, id);
  assert.equal(next.refreshToken, 'r1');
  assert.equal(new URLSearchParams(ok.calls[0].init.body).get('grant_type'), 'refresh_token');
  assert.equal(await refreshCognito(c, { ...session, refreshToken: undefined }, ok), null);
  await assert.rejects(
    refreshCognito(c, session, fakeFetch(() => ({ status: 400, json: { error: 'invalid_grant', error_description: 'Refresh Token has expired' } }))),
    (e) => e instanceof SignInRequired && /expired/.test(e.message),
  );
  await assert.rejects(refreshCognito(c, session, fakeFetch(() => ({ status: 500, text: 'oops' }))), (e) => !(e instanceof SignInRequired));
});
