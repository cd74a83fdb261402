// Signing in: who the page is, the bearer token it sends, and how it gets a new one.
//
// Plain module with no DOM access (storage, fetch, crypto and the clock are passed in), so
// the Node tests exercise all of it. Two ways to a token:
//
// - Development sign-in (the local server with AUTH_MODE=jwt and a development secret):
//   `POST /api/dev/signIn {"name"}` -> `{"token","user","expiresAt"}`. A new token is had
//   by signing in again with the same name.
// - Amazon Cognito's hosted UI, when config.json has
//   `"auth": {"cognito": {"domain", "clientId", "redirectUri"?, "scopes"?, "tokenUse"?}}`:
//   the OAuth 2.0 authorization-code flow with PKCE (RFC 7636). The page redirects to
//   `https://<domain>/oauth2/authorize`, Cognito redirects back with `?code=&state=`, and
//   the page trades the code (with the PKCE verifier it kept in sessionStorage) for tokens
//   at `/oauth2/token`. A new token is had with the refresh token (grant_type
//   refresh_token), without a redirect; when that fails the user signs in again.
//
// The session lives in sessionStorage: one per tab, so two tabs of one browser profile can
// be two users (the Replicache name includes the user, so they never share a client group).

export const SESSION_KEY = 'counter-auth';
export const PKCE_KEY = 'counter-auth-pkce';

/**
 * Renew a token this long before it expires rather than wait for a 401 (or a quarter of
 * its lifetime, for short-lived ones).
 */
export const EXPIRY_SKEW_MS = 30_000;

/**
 * The Replicache `name`: per space, and per user when signed in, so two users of one
 * browser profile (two tabs) never share a client group; the server would refuse the
 * second user with 403. The user part is URI-encoded and `@` cannot occur in a space ID,
 * so different (user, space) pairs never give the same name.
 * @param {string} spaceID
 * @param {string|null|undefined} user
 */
export function replicacheName(spaceID, user) {
  return user ? `counter-${encodeURIComponent(user)}@${spaceID}` : `counter-${spaceID}`;
}

/** An API call answered 401 and no new token could be had: the user must sign in. */
export class SignInRequired extends Error {
  constructor(message = 'sign-in required') {
    super(message);
    this.name = 'SignInRequired';
  }
}

/** The `Authorization` header value Replicache and the API calls send. */
export const bearer = (token) => `Bearer ${token}`;

// ---------------------------------------------------------------- tokens

function base64UrlDecode(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(s.length / 4) * 4, '=');
  const binary = atob(b64);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

export function base64UrlEncode(bytes) {
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/**
 * The claims of a JWT, unverified (the server verifies; the page only reads `exp` and a
 * name to show). `null` for anything that is not a JWT with a JSON object payload.
 * @param {string} token
 */
export function decodeJwt(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1]) return null;
  try {
    const claims = JSON.parse(base64UrlDecode(parts[1]));
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? claims : null;
  } catch {
    return null;
  }
}

/**
 * An expiry as epoch milliseconds, from a server's `expiresAt` (epoch seconds, epoch
 * milliseconds or an ISO date) or else the token's `exp` claim; `null` if neither says.
 */
export function expiryMs(expiresAt, token) {
  if (typeof expiresAt === 'number' && Number.isFinite(expiresAt) && expiresAt > 0) {
    return expiresAt < 1e12 ? expiresAt * 1000 : expiresAt;
  }
  if (typeof expiresAt === 'string' && expiresAt.trim() !== '') {
    if (/^\d+$/.test(expiresAt.trim())) return expiryMs(Number(expiresAt), token);
    const parsed = Date.parse(expiresAt);
    if (Number.isFinite(parsed)) return parsed;
  }
  const exp = decodeJwt(token)?.exp;
  return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : null;
}

/** When a token was issued (its `iat`, else `now`), epoch ms. */
function issuedMs(token, now) {
  const iat = decodeJwt(token)?.iat;
  return typeof iat === 'number' && Number.isFinite(iat) ? iat * 1000 : now;
}

// ---------------------------------------------------------------- the session

/**
 * @typedef {object} Session
 * @property {'dev'|'cognito'} provider
 * @property {string} user      the user ID the server sees (the token's `sub`)
 * @property {string} label     what to show ("alice", an e-mail address)
 * @property {string} token     the bearer token
 * @property {number|null} expiresAt epoch ms
 * @property {number} [issuedAt] epoch ms
 * @property {string} [name]    dev: the name signed in with (to sign in again)
 * @property {string} [refreshToken] cognito
 */

const isSession = (s) =>
  s &&
  typeof s === 'object' &&
  (s.provider === 'dev' || s.provider === 'cognito') &&
  typeof s.user === 'string' &&
  s.user !== '' &&
  typeof s.token === 'string' &&
  s.token !== '';

/** The stored session, or `null` (missing, unreadable or malformed). */
export function loadSession(storage) {
  try {
    const raw = storage?.getItem(SESSION_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw);
    return isSession(s) ? { label: s.user, expiresAt: null, ...s } : null;
  } catch {
    return null;
  }
}

export function saveSession(storage, session) {
  try {
    if (session) storage?.setItem(SESSION_KEY, JSON.stringify(session));
    else storage?.removeItem(SESSION_KEY);
  } catch {
    // storage full or refused: the session lasts as long as the page
  }
}

/**
 * The current session and its token, renewed on demand. `renew(session)` is the
 * provider's way to a new session (dev: sign in again; Cognito: the refresh token);
 * it resolves to the new session or `null` when the user has to sign in again.
 * Concurrent renewals share one request.
 */
export class TokenSource {
  #session;
  #renewing = null;

  /**
   * @param {object} options
   * @param {Session|null} options.session
   * @param {(session: Session) => Promise<Session|null>} options.renew
   * @param {Storage} [options.storage] where the session is kept (sessionStorage)
   * @param {() => number} [options.now]
   * @param {(session: Session|null) => void} [options.onChange]
   */
  constructor({ session, renew, storage, now = Date.now, onChange = () => {} }) {
    this.#session = session ?? null;
    this.renewSession = renew;
    this.storage = storage;
    this.now = now;
    this.onChange = onChange;
  }

  get session() {
    return this.#session;
  }

  get user() {
    return this.#session?.user ?? null;
  }

  /** The token as it is, fresh or not; `null` when signed out. */
  get token() {
    return this.#session?.token ?? null;
  }

  set(session) {
    this.#session = session ?? null;
    saveSession(this.storage, this.#session);
    try {
      this.onChange(this.#session);
    } catch {
      // a listener's bug must not lose the session
    }
  }

  /**
   * Whether the token expires within `EXPIRY_SKEW_MS`, or a quarter of its lifetime when
   * that is shorter (unknown expiry: no).
   */
  expiring() {
    const at = this.#session?.expiresAt;
    if (typeof at !== 'number') return false;
    const issued = this.#session.issuedAt;
    const lifetime = typeof issued === 'number' && issued < at ? at - issued : Infinity;
    return at - this.now() < Math.min(EXPIRY_SKEW_MS, lifetime / 4);
  }

  /** A token that is not about to expire: the current one, or a renewed one. */
  async fresh() {
    if (!this.#session) return null;
    if (!this.expiring()) return this.#session.token;
    return this.renew();
  }

  /**
   * A new token (after a 401, or before expiry); `null` when none can be had, and then
   * the session is dropped: the user signs in again.
   */
  renew() {
    if (!this.#session) return Promise.resolve(null);
    if (!this.#renewing) {
      const before = this.#session;
      this.#renewing = (async () => {
        let next = null;
        try {
          next = await this.renewSession(before);
        } catch (e) {
          // The server is unreachable: keep the session (the token may still be good
          // once it is back) and report no new token for now.
          if (!(e instanceof SignInRequired)) return null;
        }
        if (this.#session !== before) return this.#session?.token ?? null; // signed out meanwhile
        this.set(isSession(next) ? next : null);
        return this.#session?.token ?? null;
      })().finally(() => (this.#renewing = null));
    }
    return this.#renewing;
  }
}

// ---------------------------------------------------------------- development sign-in

/**
 * Signs in with the local server's development sign-in.
 * Throws `DevSignInUnavailable` on 404 (no development secret, e.g. JWKS mode),
 * `SignInRequired` on other 4xx (with the server's message), `Error` otherwise.
 * @param {string} httpApiUrl
 * @param {string} name
 * @param {typeof fetch} [fetchImpl]
 * @returns {Promise<Session>}
 */
export async function devSignIn(httpApiUrl, name, fetchImpl = globalThis.fetch, now = Date.now()) {
  const res = await fetchImpl(`${httpApiUrl}/api/dev/signIn`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  });
  let json = null;
  try {
    json = await res.json();
  } catch {
    // not JSON
  }
  if (res.status === 404 || res.status === 405) throw new DevSignInUnavailable();
  if (res.status >= 400 && res.status < 500) {
    throw new SignInRequired(json?.message ?? `sign-in refused (${res.status})`);
  }
  if (res.status !== 200 || typeof json?.token !== 'string' || json.token === '') {
    throw new Error(json?.message ?? `sign-in answered ${res.status}`);
  }
  const user = typeof json.user === 'string' && json.user !== '' ? json.user : decodeJwt(json.token)?.sub;
  if (typeof user !== 'string' || user === '') throw new Error('sign-in answered without a user');
  return {
    provider: 'dev',
    user,
    label: user,
    name,
    token: json.token,
    expiresAt: expiryMs(json.expiresAt, json.token),
    issuedAt: issuedMs(json.token, now),
  };
}

/** A 404 from the development sign-in: the server has none (e.g. it verifies JWKS tokens). */
export class DevSignInUnavailable extends SignInRequired {
  constructor() {
    super(
      'this server requires sign-in but offers no development sign-in, and this client has no identity provider configured (config.json "auth")',
    );
    this.name = 'DevSignInUnavailable';
  }
}

// ---------------------------------------------------------------- Cognito hosted UI

const DEFAULT_SCOPES = ['openid', 'email', 'profile'];

/**
 * The `auth` section of config.json, normalised:
 * - `{cognito: {domain, clientId, redirectUri?, logoutUri?, scopes?, tokenUse?}}` ->
 *   `{kind: 'cognito', cognito: {...}}` (domain as an https origin; redirectUri defaults to
 *   the app's root `origin + base`; tokenUse `id` (default) or `access`);
 * - `{dev: true}` -> `{kind: 'dev'}`: sign in before anything else;
 * - anything else -> `{kind: 'auto'}`: sign in when the server answers 401.
 * @param {unknown} raw  config.json's `auth`
 * @param {{origin: string}} location
 * @param {string} [base] the app's base path ('/')
 */
export function resolveAuth(raw, location, base = '/') {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { kind: 'auto' };
  const c = raw.cognito;
  if (c && typeof c === 'object' && typeof c.domain === 'string' && typeof c.clientId === 'string') {
    const domain = c.domain.trim().replace(/\/+$/, '');
    const clientId = c.clientId.trim();
    if (domain && clientId) {
      const origin = /^https?:\/\//i.test(domain) ? domain : `https://${domain}`;
      const root = `${location.origin}${base}`;
      const nonEmpty = (v) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined);
      const scopes =
        Array.isArray(c.scopes) && c.scopes.every((s) => typeof s === 'string') && c.scopes.length
          ? c.scopes
          : typeof c.scopes === 'string' && c.scopes.trim()
            ? c.scopes.trim().split(/\s+/)
            : DEFAULT_SCOPES;
      return {
        kind: 'cognito',
        cognito: {
          domain: origin,
          clientId,
          redirectUri: nonEmpty(c.redirectUri) ?? root,
          logoutUri: nonEmpty(c.logoutUri) ?? nonEmpty(c.redirectUri) ?? root,
          scopes,
          tokenUse: c.tokenUse === 'access' ? 'access' : 'id',
        },
      };
    }
  }
  if (raw.dev === true) return { kind: 'dev' };
  return { kind: 'auto' };
}

/** `bytes` random bytes as base64url (43 characters for 32 bytes: a valid PKCE verifier). */
export function randomToken(bytes = 32, cryptoImpl = globalThis.crypto) {
  const buf = new Uint8Array(bytes);
  cryptoImpl.getRandomValues(buf);
  return base64UrlEncode(buf);
}

/** PKCE S256: base64url(SHA-256(verifier)). */
export async function pkceChallenge(verifier, cryptoImpl = globalThis.crypto) {
  const digest = await cryptoImpl.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64UrlEncode(new Uint8Array(digest));
}

/** The hosted UI's sign-in URL. */
export function cognitoAuthorizeURL(cognito, { state, challenge }) {
  const u = new URL(`${cognito.domain}/oauth2/authorize`);
  u.searchParams.set('response_type', 'code');
  u.searchParams.set('client_id', cognito.clientId);
  u.searchParams.set('redirect_uri', cognito.redirectUri);
  u.searchParams.set('scope', cognito.scopes.join(' '));
  u.searchParams.set('state', state);
  u.searchParams.set('code_challenge_method', 'S256');
  u.searchParams.set('code_challenge', challenge);
  return u.toString();
}

/** The hosted UI's sign-out URL (it must be among the app client's sign-out URLs). */
export function cognitoLogoutURL(cognito) {
  const u = new URL(`${cognito.domain}/logout`);
  u.searchParams.set('client_id', cognito.clientId);
  u.searchParams.set('logout_uri', cognito.logoutUri);
  return u.toString();
}

function tokenRequest(cognito, params) {
  return {
    url: `${cognito.domain}/oauth2/token`,
    init: {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ client_id: cognito.clientId, ...params }).toString(),
    },
  };
}

/** The token endpoint request that trades an authorization code (and PKCE verifier). */
export function cognitoCodeRequest(cognito, { code, verifier }) {
  return tokenRequest(cognito, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: cognito.redirectUri,
    code_verifier: verifier,
  });
}

/** The token endpoint request that trades a refresh token for new ID and access tokens. */
export function cognitoRefreshRequest(cognito, refreshToken) {
  return tokenRequest(cognito, { grant_type: 'refresh_token', refresh_token: refreshToken });
}

/**
 * A session from the token endpoint's answer. The bearer token is the ID token (its
 * `aud` is the app client ID, what an HTTP API JWT authorizer or the local server's
 * audience check expects) unless `tokenUse` is `access`. A refresh answer carries no
 * refresh token: the previous one is kept.
 * @param {object} json
 * @param {{tokenUse: 'id'|'access'}} cognito
 * @param {Session|null} [previous]
 * @param {number} [now]
 * @returns {Session}
 */
export function sessionFromTokens(json, cognito, previous = null, now = Date.now()) {
  if (!json || typeof json !== 'object') throw new Error('the token endpoint answered no JSON');
  if (json.error) throw new SignInRequired(`${json.error}${json.error_description ? `: ${json.error_description}` : ''}`);
  const token = cognito.tokenUse === 'access' ? json.access_token : json.id_token;
  if (typeof token !== 'string' || token === '') {
    throw new Error(`the token endpoint answered without an ${cognito.tokenUse === 'access' ? 'access' : 'ID'} token`);
  }
  const claims = decodeJwt(token) ?? {};
  const idClaims = decodeJwt(json.id_token) ?? claims;
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new Error('the token has no subject');
  const label =
    [idClaims.email, idClaims['cognito:username'], idClaims.username, claims.username].find(
      (v) => typeof v === 'string' && v !== '',
    ) ?? claims.sub;
  const expiresIn = Number(json.expires_in);
  return {
    provider: 'cognito',
    user: claims.sub,
    label,
    token,
    issuedAt: issuedMs(token, now),
    expiresAt:
      typeof claims.exp === 'number'
        ? claims.exp * 1000
        : Number.isFinite(expiresIn) && expiresIn > 0
          ? now + expiresIn * 1000
          : null,
    refreshToken:
      typeof json.refresh_token === 'string' && json.refresh_token !== ''
        ? json.refresh_token
        : previous?.refreshToken,
  };
}

/**
 * What Cognito's redirect put in the query string: `{code, state}`, `{error,
 * description, state}`, or `null` when it is not a sign-in callback.
 */
export function parseCallback(search) {
  const q = new URLSearchParams(search);
  const state = q.get('state');
  if (q.has('error') && state !== null) {
    return { error: q.get('error'), description: q.get('error_description') ?? '', state };
  }
  const code = q.get('code');
  if (code && state) return { code, state };
  return null;
}

/** Posts a token request; the parsed answer (or a `SignInRequired` for a 400 such as invalid_grant). */
export async function postTokenRequest({ url, init }, fetchImpl = globalThis.fetch) {
  const res = await fetchImpl(url, init);
  let json = null;
  try {
    json = await res.json();
  } catch {
    // not JSON
  }
  if (res.status >= 400 && res.status < 500) {
    throw new SignInRequired(
      json?.error ? `${json.error}${json.error_description ? `: ${json.error_description}` : ''}` : `token endpoint answered ${res.status}`,
    );
  }
  if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}`);
  return json;
}

/**
 * Starts the hosted-UI sign-in: keeps the PKCE verifier, the state and where to come
 * back to in `storage`, and returns the URL to send the browser to.
 */
export async function beginCognitoSignIn(cognito, storage, returnTo, cryptoImpl = globalThis.crypto) {
  const verifier = randomToken(32, cryptoImpl);
  const state = randomToken(16, cryptoImpl);
  storage.setItem(PKCE_KEY, JSON.stringify({ verifier, state, returnTo }));
  return cognitoAuthorizeURL(cognito, { state, challenge: await pkceChallenge(verifier, cryptoImpl) });
}

/**
 * Finishes the hosted-UI sign-in after the redirect back: checks the state against the
 * stored one, trades the code, and returns `{session, returnTo}`. `null` when the query
 * string is not a callback this tab started.
 */
export async function completeCognitoSignIn(cognito, storage, search, fetchImpl = globalThis.fetch) {
  const cb = parseCallback(search);
  if (!cb) return null;
  let pending = null;
  try {
    pending = JSON.parse(storage.getItem(PKCE_KEY) ?? 'null');
  } catch {
    pending = null;
  }
  if (!pending || pending.state !== cb.state) return null;
  storage.removeItem(PKCE_KEY);
  if (cb.error) throw new SignInRequired(`${cb.error}${cb.description ? `: ${cb.description}` : ''}`);
  const json = await postTokenRequest(cognitoCodeRequest(cognito, { code: cb.code, verifier: pending.verifier }), fetchImpl);
  return { session: sessionFromTokens(json, cognito), returnTo: pending.returnTo || '/' };
}

/** A new Cognito session from the refresh token, or `null` when there is none. */
export async function refreshCognito(cognito, session, fetchImpl = globalThis.fetch) {
  if (!session?.refreshToken) return null;
  const json = await postTokenRequest(cognitoRefreshRequest(cognito, session.refreshToken), fetchImpl);
  return sessionFromTokens(json, cognito, session);
}
