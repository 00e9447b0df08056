// WebAuthn in the browser: options from the gateway (base64url JSON) in, credentials out.
const b64u = {
  decode(text) {
    const pad = "=".repeat((4 - (text.length % 4)) % 4);
    const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/") + pad);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0)).buffer;
  },
  encode(buffer) {
    let bin = "";
    for (const byte of new Uint8Array(buffer)) bin += String.fromCharCode(byte);
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  },
};

const described = (list) => (list || []).map((c) => ({ ...c, id: b64u.decode(c.id) }));

export function supported() {
  return typeof window.PublicKeyCredential === "function";
}

export async function create(options) {
  const publicKey = {
    ...options,
    challenge: b64u.decode(options.challenge),
    user: { ...options.user, id: b64u.decode(options.user.id) },
    excludeCredentials: described(options.excludeCredentials),
  };
  const cred = await navigator.credentials.create({ publicKey });
  return {
    id: cred.id,
    rawId: b64u.encode(cred.rawId),
    type: cred.type,
    response: {
      clientDataJSON: b64u.encode(cred.response.clientDataJSON),
      attestationObject: b64u.encode(cred.response.attestationObject),
      transports: cred.response.getTransports ? cred.response.getTransports() : [],
    },
    clientExtensionResults: cred.getClientExtensionResults(),
    authenticatorAttachment: cred.authenticatorAttachment || undefined,
  };
}

export async function get(options) {
  const publicKey = {
    ...options,
    challenge: b64u.decode(options.challenge),
    allowCredentials: described(options.allowCredentials),
  };
  const cred = await navigator.credentials.get({ publicKey });
  const r = cred.response;
  return {
    id: cred.id,
    rawId: b64u.encode(cred.rawId),
    type: cred.type,
    response: {
      clientDataJSON: b64u.encode(r.clientDataJSON),
      authenticatorData: b64u.encode(r.authenticatorData),
      signature: b64u.encode(r.signature),
      userHandle: r.userHandle ? b64u.encode(r.userHandle) : undefined,
    },
    clientExtensionResults: cred.getClientExtensionResults(),
    authenticatorAttachment: cred.authenticatorAttachment || undefined,
  };
}
