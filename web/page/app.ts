// Helpline's reference page: every call goes through the generated
// @helpline/client to the web gateway. The gateway's URL comes from
// gateway.json beside the page ({"url": "...", "currency": "EUR"}), never
// from the address bar (a link must not send a password elsewhere);
// ?protocol=connect|grpc-web picks the wire protocol.
//
// Elements a test drives carry data-testid; a field's error slot carries
// data-error-for="<proto field name>".
import {
  Code,
  ConnectError,
  HelpRequestStatus,
  PresenceStatus,
  createHelplineClients,
  durationMs,
  fieldViolations,
  timestampDate,
  type HelpRequest,
  type HelplineClients,
  type Money,
  type Offer,
  type PriceTerms,
  type Protocol,
} from "@helpline/client";

interface GatewayConfig {
  url: string;
  // ISO 4217 code budgets are sent in: the deployment's currency.
  currency?: string;
}

// Heartbeat retry pause after a failure, and the pause before a Watch call
// that ended early is opened again.
const RETRY_MS = 2000;
const RECONNECT_MS = 1000;
const CALL_TIMEOUT_MS = 10_000;

let clients: HelplineClients;
let currency = "EUR";
// Kept in memory only: a reload signs out.
let accessToken: string | undefined;

function byTestId<T extends HTMLElement = HTMLElement>(testId: string): T {
  const element = document.querySelector<T>(`[data-testid="${testId}"]`);
  if (!element) throw new Error(`the page has no [data-testid="${testId}"]`);
  return element;
}

function text(form: HTMLFormElement, name: string): string {
  return String(new FormData(form).get(name) ?? "").trim();
}

async function loadConfig(): Promise<GatewayConfig> {
  const response = await fetch("gateway.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`gateway.json: HTTP ${response.status}`);
  return (await response.json()) as GatewayConfig;
}

function protocolFrom(params: URLSearchParams): Protocol {
  const protocol = params.get("protocol") ?? "connect";
  if (protocol !== "connect" && protocol !== "grpc-web") {
    throw new Error(`?protocol=${protocol}: use connect or grpc-web`);
  }
  return protocol;
}

// Resolves true after `ms`, or false as soon as `signal` aborts.
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const timer = setTimeout(() => resolve(true), ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve(false);
    }, { once: true });
  });
}

// An idempotency key; crypto.randomUUID() exists only in secure contexts.
function newRequestId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// --- Errors -----------------------------------------------------------------

// The slot of a field or, failing that, of the closest enclosing field:
// "budget.max_per_minute.amount_minor" is shown at "budget".
function errorSlot(form: HTMLElement, field: string): HTMLElement | null {
  for (let path = field; path; path = path.slice(0, Math.max(0, path.lastIndexOf(".")))) {
    const slot = form.querySelector<HTMLElement>(`[data-error-for="${CSS.escape(path)}"]`);
    if (slot) return slot;
  }
  return null;
}

function clearErrors(line: HTMLElement, form?: HTMLElement): void {
  line.textContent = "";
  delete line.dataset.code;
  form?.querySelectorAll<HTMLElement>("[data-error-for]").forEach((slot) => (slot.textContent = ""));
}

// Code and message on the error line; each field violation beside its field
// in `form`, or on the line when the form has no slot for it.
function showError(line: HTMLElement, error: unknown, form?: HTMLElement): void {
  const failure = ConnectError.from(error);
  const unplaced: string[] = [];
  for (const [field, description] of Object.entries(fieldViolations(failure))) {
    const slot = form && errorSlot(form, field);
    if (slot) slot.textContent = slot.textContent ? `${slot.textContent}; ${description}` : description;
    else unplaced.push(`${field} ${description}`);
  }
  // The message reads "[invalid_argument] ...".
  line.textContent = [failure.message, ...unplaced].join("; ");
  line.dataset.code = Code[failure.code];
}

// Streams are opened again unless the call itself was wrong: a restarting
// gateway, a dropped network (Unknown, Internal in the browser) or a
// deadline end them, and a reconnect gets the current state at once.
const NOT_WORTH_RECONNECTING = new Set([Code.InvalidArgument, Code.NotFound, Code.PermissionDenied,
  Code.Unauthenticated, Code.FailedPrecondition, Code.Unimplemented, Code.Canceled]);
function worthReconnecting(error: ConnectError): boolean {
  return !NOT_WORTH_RECONNECTING.has(error.code);
}

// --- Money ------------------------------------------------------------------

function minorDigits(currencyCode: string): number {
  return new Intl.NumberFormat("en", { style: "currency", currency: currencyCode })
    .resolvedOptions().maximumFractionDigits ?? 2;
}

function formatMoney(money?: Money): string {
  if (!money) return "?";
  const amount = Number(money.amountMinor) / 10 ** minorDigits(money.currencyCode);
  return new Intl.NumberFormat(undefined, { style: "currency", currency: money.currencyCode }).format(amount);
}

// "1.50" EUR -> 150n. Anything unreadable becomes 0 and the server says why.
function parseMinor(input: string, currencyCode: string): bigint {
  const amount = Number(input.replace(",", "."));
  if (!Number.isFinite(amount)) return 0n;
  return BigInt(Math.round(amount * 10 ** minorDigits(currencyCode)));
}

function formatPrice(price?: PriceTerms): string {
  switch (price?.kind.case) {
    case "perMinute":
      return `${formatMoney(price.kind.value.rate)} / min, at least ${price.kind.value.minimumMinutes} min`;
    case "fixed":
      return `${formatMoney(price.kind.value.price)} for ${price.kind.value.sessionMinutes} min`;
    default:
      return "no price";
  }
}

// --- Sign in ----------------------------------------------------------------

// Browser storage is best effort: blocked or full, sign-in still works.
function stored(key: string): string {
  try {
    return localStorage.getItem(key) ?? "";
  } catch {
    return "";
  }
}

function store(key: string, value: string): void {
  try {
    localStorage.setItem(key, value);
  } catch {
    // kept for this page only: the next sign-in is an ordinary one
  }
}

async function signIn(form: HTMLFormElement): Promise<void> {
  const line = byTestId("sign-in-error");
  clearErrors(line, form);
  try {
    // The device token of this browser's last sign-in to the account keeps
    // the owner's attempts apart from anybody else's guesses.
    const email = text(form, "email");
    const deviceKey = `helpline.device-token.${email.trim().toLowerCase()}`;
    const reply = await clients.identity.login({
      email,
      password: text(form, "password"),
      deviceToken: stored(deviceKey),
    });
    if (reply.deviceToken) store(deviceKey, reply.deviceToken);
    accessToken = reply.tokens?.accessToken;
    const { user } = await clients.identity.getMe({});
    byTestId("who").textContent = `${user?.displayName} (${user?.roles.join(", ")})`;
    byTestId("sign-in").hidden = true;
    byTestId("signed-in").hidden = false;
  } catch (error) {
    showError(line, error, form);
    return;
  }
  void loadCategories();
}

async function loadCategories(): Promise<void> {
  try {
    const { categories } = await clients.catalog.listCategories({});
    const options = categories.map((category) => {
      const option = document.createElement("option");
      option.value = category.categoryId;
      option.label = category.path.join(" › ");
      return option;
    });
    document.getElementById("categories")?.replaceChildren(...options);
  } catch (error) {
    showError(byTestId("search-error"), error);
  }
}

// --- Search -----------------------------------------------------------------

async function search(form: HTMLFormElement): Promise<void> {
  const line = byTestId("search-error");
  const results = byTestId("search-results");
  clearErrors(line, form);
  try {
    const { hits } = await clients.catalog.searchExperts({
      text: text(form, "text"),
      categoryId: text(form, "category_id"),
      pageSize: 20,
    });
    const items = hits.map((hit) => {
      const item = document.createElement("li");
      item.dataset.testid = "expert-hit";
      item.dataset.expertId = hit.expertId;
      item.textContent = [hit.publicName, hit.headline, formatPrice(hit.price), hit.online ? "online now" : ""]
        .filter(Boolean).join(" · ");
      return item;
    });
    if (items.length === 0) {
      const none = document.createElement("li");
      none.textContent = "No experts found.";
      items.push(none);
    }
    results.replaceChildren(...items);
  } catch (error) {
    results.replaceChildren();
    showError(line, error, form);
  }
}

// --- Ask for help now -------------------------------------------------------

let requestWatch: AbortController | undefined;

const STATUS_NAMES: Record<HelpRequestStatus, string> = {
  [HelpRequestStatus.UNSPECIFIED]: "unknown",
  [HelpRequestStatus.WAITING]: "waiting",
  [HelpRequestStatus.OFFERED]: "offered",
  [HelpRequestStatus.MATCHED]: "matched",
  [HelpRequestStatus.CANCELLED]: "cancelled",
  [HelpRequestStatus.EXPIRED]: "expired",
};

function isOver(status: HelpRequestStatus): boolean {
  return status === HelpRequestStatus.MATCHED || status === HelpRequestStatus.CANCELLED ||
    status === HelpRequestStatus.EXPIRED;
}

// data-status, data-position and data-session-id say what the text says;
// data-matched-at is when this page first showed the match (ms since epoch).
function showRequest(request: HelpRequest): void {
  const line = byTestId("request-status");
  if (line.dataset.requestId === request.helpRequestId &&
      BigInt(line.dataset.version ?? "0") > request.version) {
    return;
  }
  line.dataset.requestId = request.helpRequestId;
  line.dataset.version = String(request.version);
  line.dataset.status = STATUS_NAMES[request.status];
  delete line.dataset.position;
  switch (request.status) {
    case HelpRequestStatus.WAITING:
      line.dataset.position = String(request.position);
      line.textContent = `waiting: position ${request.position}`;
      break;
    case HelpRequestStatus.OFFERED:
      line.textContent = "offered: an expert is looking at your request";
      break;
    case HelpRequestStatus.MATCHED:
      line.dataset.matchedAt ??= String(Date.now());
      line.dataset.sessionId = request.match?.matchId ?? "";
      line.textContent = `matched: session ${request.match?.matchId}`;
      break;
    default:
      line.textContent = STATUS_NAMES[request.status];
  }
}

async function watchRequest(helpRequestId: string, signal: AbortSignal): Promise<void> {
  do {
    try {
      const updates = clients.matching.watchRequest({ helpRequestId }, { signal, timeoutMs: 0 });
      for await (const { helpRequest } of updates) {
        if (!helpRequest) continue;
        showRequest(helpRequest);
        if (isOver(helpRequest.status)) return;
      }
    } catch (error) {
      if (signal.aborted) return;
      const failure = ConnectError.from(error);
      if (!worthReconnecting(failure)) return showError(byTestId("help-error"), failure);
    }
  } while (await sleep(RECONNECT_MS, signal));
}

async function askForHelp(form: HTMLFormElement): Promise<void> {
  const line = byTestId("help-error");
  const status = byTestId("request-status");
  clearErrors(line, form);
  requestWatch?.abort();
  try {
    const { helpRequest } = await clients.matching.requestHelp({
      requestId: newRequestId(),
      categoryId: text(form, "category_id"),
      language: text(form, "language"),
      description: text(form, "description"),
      budget: {
        kind: {
          case: "maxPerMinute",
          value: { currencyCode: currency, amountMinor: parseMinor(text(form, "budget"), currency) },
        },
      },
      maxMinutes: Math.trunc(Number(text(form, "max_minutes"))) || 0,
    });
    if (!helpRequest) throw new Error("RequestHelp answered without the request");
    for (const key of ["requestId", "version", "status", "position", "matchedAt", "sessionId"]) {
      delete status.dataset[key];
    }
    showRequest(helpRequest);
    requestWatch = new AbortController();
    void watchRequest(helpRequest.helpRequestId, requestWatch.signal);
  } catch (error) {
    showError(line, error, form);
  }
}

// --- As an expert -----------------------------------------------------------

let online: AbortController | undefined;
let openOffer: Offer | undefined;

// Returns when the next heartbeat is due, in ms.
async function heartbeat(status: PresenceStatus, signal?: AbortSignal): Promise<number> {
  const reply = await clients.matching.heartbeat({ status }, { signal });
  const until = reply.onlineUntil ? timestampDate(reply.onlineUntil).toLocaleTimeString() : "?";
  byTestId("presence").textContent = status === PresenceStatus.AVAILABLE
    ? `online and available (until ${until} without a heartbeat)`
    : "away";
  return reply.nextHeartbeatIn ? durationMs(reply.nextHeartbeatIn) : RETRY_MS;
}

async function keepOnline(firstWaitMs: number, signal: AbortSignal): Promise<void> {
  let wait = firstWaitMs;
  while (await sleep(wait, signal)) {
    try {
      wait = await heartbeat(PresenceStatus.AVAILABLE, signal);
    } catch (error) {
      if (signal.aborted) return;
      showError(byTestId("expert-error"), error);
      wait = RETRY_MS;
    }
  }
}

function showOffer(offer?: Offer): void {
  openOffer = offer;
  const box = byTestId("offer");
  box.hidden = !offer;
  if (!offer) {
    delete box.dataset.offerId;
    return;
  }
  box.dataset.offerId = offer.offerId;
  const answerBy = offer.expiresAt ? timestampDate(offer.expiresAt).toLocaleTimeString() : "?";
  byTestId("offer-text").textContent =
    `"${offer.description}" (${offer.categoryId}, ${offer.language}), ${formatPrice(offer.price)}, ` +
    `up to ${offer.maxMinutes} min; answer by ${answerBy}`;
}

async function watchOffers(signal: AbortSignal): Promise<void> {
  do {
    try {
      for await (const { offer } of clients.matching.watchOffers({}, { signal, timeoutMs: 0 })) {
        showOffer(offer);
      }
    } catch (error) {
      if (signal.aborted) return;
      const failure = ConnectError.from(error);
      if (!worthReconnecting(failure)) return showError(byTestId("expert-error"), failure);
    }
  } while (await sleep(RECONNECT_MS, signal));
}

async function toggleOnline(button: HTMLButtonElement): Promise<void> {
  const line = byTestId("expert-error");
  clearErrors(line);
  if (online) {
    online.abort();
    online = undefined;
    showOffer(undefined);
    button.textContent = "Go online";
    // Away takes no offers at once; without heartbeats presence then lapses.
    try {
      await heartbeat(PresenceStatus.AWAY);
    } catch (error) {
      showError(line, error);
    }
    return;
  }
  const session = new AbortController();
  online = session;
  button.textContent = "Go offline";
  try {
    const nextInMs = await heartbeat(PresenceStatus.AVAILABLE, session.signal);
    void keepOnline(nextInMs, session.signal);
    void watchOffers(session.signal);
  } catch (error) {
    session.abort();
    online = undefined;
    button.textContent = "Go online";
    showError(line, error);
  }
}

// data-accept-clicked-at is when Accept was clicked (ms since epoch), for
// measuring how soon the person's page shows the match.
async function answerOffer(accept: boolean): Promise<void> {
  const offer = openOffer;
  if (!offer) return;
  const result = byTestId("offer-result");
  const line = byTestId("expert-error");
  clearErrors(line);
  if (accept) result.dataset.acceptClickedAt = String(Date.now());
  try {
    if (accept) {
      const { helpRequest } = await clients.matching.acceptOffer({ offerId: offer.offerId });
      result.dataset.sessionId = helpRequest?.match?.matchId ?? "";
      result.textContent = `accepted: session ${helpRequest?.match?.matchId}`;
    } else {
      await clients.matching.declineOffer({ offerId: offer.offerId });
      result.textContent = "declined";
    }
    if (openOffer?.offerId === offer.offerId) showOffer(undefined);
  } catch (error) {
    showError(line, error);
  }
}

// --- Start ------------------------------------------------------------------

function onSubmit(testId: string, handler: (form: HTMLFormElement) => Promise<void>): void {
  const form = byTestId<HTMLFormElement>(testId);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void handler(form);
  });
}

async function start(): Promise<void> {
  const params = new URLSearchParams(location.search);
  try {
    const config = await loadConfig();
    const protocol = protocolFrom(params);
    currency = config.currency ?? currency;
    clients = createHelplineClients(config.url, {
      protocol,
      token: () => accessToken,
      defaultTimeoutMs: CALL_TIMEOUT_MS,
    });
    byTestId("gateway").textContent = `${config.url} (${protocol})`;
  } catch (error) {
    byTestId("sign-in-error").textContent = `cannot start: ${String(error)}`;
    return;
  }
  byTestId("currency").textContent = currency;
  onSubmit("sign-in-form", signIn);
  onSubmit("search-form", search);
  onSubmit("help-form", askForHelp);
  const goOnline = byTestId<HTMLButtonElement>("go-online");
  goOnline.addEventListener("click", () => void toggleOnline(goOnline));
  byTestId("accept-offer").addEventListener("click", () => void answerOffer(true));
  byTestId("decline-offer").addEventListener("click", () => void answerOffer(false));
  document.body.dataset.ready = "true";
}

void start();
