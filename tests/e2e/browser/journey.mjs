#!/usr/bin/env node
// Drives Helpline's reference page (web/page) in headless Chromium through
// one journey against a running stack and gateway, asserting what a user
// would see:
//   a person signs in, finds the expert by searching the category, sends a
//   help request without a description and sees the server's field error
//   beside the description, sends a valid one and sees "position 1" (the
//   expert is offline); the expert signs in in a second browser context,
//   goes online, sees the offer and accepts it; the person's page shows
//   "offered" and then the match, within --match-within-ms of the click.
//
// The time from the expert's click to the person's page showing the match
// is measured on the pages' own clocks (one browser, one machine clock):
// data-accept-clicked-at on the expert's page, data-matched-at on the
// person's.
//
// Prints one JSON line: {"ok":true,"match_seen_ms":N,...}, or
// {"ok":false,"error":"..."} and exits 1. Screenshots and each page's
// console go to --artifacts.
//
// Usage:
//   node journey.mjs --page-url URL --person-email E --expert-email E
//     --password P --category-id ID --expert-name NAME --artifacts DIR
//     [--protocol connect|grpc-web] [--language de] [--budget 2.00]
//     [--match-within-ms 1000] [--timeout-ms 15000]
//     [--chromium /usr/bin/chromium] [--node-modules DIR]
// --page-url is the page as served (on another origin than the gateway);
// ?protocol= is added to it. --node-modules holds puppeteer-core (default
// $HL_DEPS_DIR/npm/node_modules, HL_DEPS_DIR defaulting to ~/.cache/helpline).
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values: flags } = parseArgs({
  options: {
    "page-url": { type: "string" },
    "person-email": { type: "string" },
    "expert-email": { type: "string" },
    password: { type: "string" },
    "category-id": { type: "string" },
    "expert-name": { type: "string" },
    artifacts: { type: "string" },
    protocol: { type: "string", default: "connect" },
    language: { type: "string", default: "de" },
    budget: { type: "string", default: "2.00" },
    "match-within-ms": { type: "string", default: "1000" },
    "timeout-ms": { type: "string", default: "15000" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    "node-modules": { type: "string" },
  },
});

function usage(message) {
  process.stderr.write(`journey.mjs: ${message}\n`);
  process.exit(2);
}
for (const name of ["page-url", "person-email", "expert-email", "password", "category-id",
  "expert-name", "artifacts"]) {
  if (!flags[name]) usage(`--${name} is required`);
}
if (flags.protocol !== "connect" && flags.protocol !== "grpc-web") {
  usage("--protocol is connect or grpc-web");
}
const matchWithinMs = Number(flags["match-within-ms"]);
const timeoutMs = Number(flags["timeout-ms"]);
const artifacts = flags.artifacts;
mkdirSync(artifacts, { recursive: true });

// ESM ignores NODE_PATH: puppeteer-core is found in the bootstrapped
// node_modules and imported by path.
const nodeModules = flags["node-modules"] ??
  join(process.env.HL_DEPS_DIR ?? join(homedir(), ".cache/helpline"), "npm/node_modules");
const puppeteerPath = createRequire(join(nodeModules, "noop.js")).resolve("puppeteer-core");
const { default: puppeteer } = await import(pathToFileURL(puppeteerPath).href);

class JourneyFailure extends Error {}

function fail(message) {
  throw new JourneyFailure(message);
}

const byTestId = (testId) => `[data-testid="${testId}"]`;

// A page in its own browser context, with its console kept for the artifacts.
class PageUnderTest {
  constructor(who, page) {
    this.who = who;
    this.page = page;
    this.console = [];
    this.pageErrors = [];
    page.on("console", (message) => this.console.push(`${message.type()}: ${message.text()}`));
    page.on("pageerror", (error) => {
      this.pageErrors.push(error.message);
      this.console.push(`uncaught: ${error.message}`);
    });
    page.on("requestfailed", (request) => {
      this.console.push(`request failed: ${request.method()} ${request.url()}: ` +
        `${request.failure()?.errorText}`);
    });
  }

  static async open(who, browser) {
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    await page.setViewport({ width: 1000, height: 1000 });
    return new PageUnderTest(who, page);
  }

  // What the page says about errors and the request, for failure messages.
  async summary() {
    return await this.page.evaluate(() => {
      const lines = [];
      for (const element of document.querySelectorAll(".error, [data-error-for], " +
        "[data-testid='request-status'], [data-testid='presence']")) {
        const text = element.textContent.trim();
        if (text) lines.push(`${element.dataset.testid ?? element.dataset.errorFor}: ${text}`);
      }
      return lines.join(" | ") || "(nothing)";
    }).catch((error) => `(page unreadable: ${error.message})`);
  }

  // Waits for `predicate(arg)` to hold in the page; fails saying `what`.
  async waitFor(what, predicate, arg, timeout = timeoutMs) {
    try {
      return await this.page.waitForFunction(predicate, { timeout, polling: "mutation" }, arg);
    } catch (error) {
      if (error?.name !== "TimeoutError") throw error;
      fail(`${this.who}: ${what} did not happen within ${timeout} ms; the page shows: ` +
        `${await this.summary()}`);
    }
  }

  async fill(testId, value) {
    await this.page.locator(byTestId(testId)).setTimeout(timeoutMs).fill(value);
  }

  async click(testId) {
    await this.page.locator(byTestId(testId)).setTimeout(timeoutMs).click();
  }

  async text(testId) {
    return await this.page.$eval(byTestId(testId), (element) => element.textContent.trim());
  }

  async load(url) {
    await this.page.goto(url, { waitUntil: "load", timeout: timeoutMs });
    await this.waitFor("the page starting (body[data-ready])",
      () => document.body.dataset.ready === "true" ||
        document.querySelector("[data-testid='sign-in-error']")?.textContent.trim());
    if (await this.page.$eval("body", (body) => body.dataset.ready !== "true")) {
      fail(`${this.who}: the page did not start: ${await this.text("sign-in-error")}`);
    }
  }

  async signIn(email, password) {
    await this.fill("email", email);
    await this.fill("password", password);
    await this.click("sign-in-submit");
    await this.waitFor(`signing in as ${email}`,
      () => !document.querySelector("[data-testid='signed-in']").hidden ||
        document.querySelector("[data-testid='sign-in-error']").textContent.trim());
    const error = await this.text("sign-in-error");
    if (error) fail(`${this.who}: signing in as ${email} failed: ${error}`);
  }

  async screenshot(name) {
    const path = join(artifacts, name);
    await this.page.screenshot({ path, fullPage: true });
    return path;
  }

  saveConsole() {
    writeFileSync(join(artifacts, `${this.who}-console.log`), this.console.join("\n") + "\n");
  }
}

// The person finds the expert among the category's search hits. Search is
// fed by events, so a just-published expert may need a moment: search again
// until the deadline.
async function searchFindsExpert(person) {
  await person.fill("search-category", flags["category-id"]);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await person.page.$eval(byTestId("search-results"), (list) => list.replaceChildren());
    await person.click("search-submit");
    await person.waitFor("search results",
      () => document.querySelector("[data-testid='search-results']").children.length > 0 ||
        document.querySelector("[data-testid='search-error']").textContent.trim());
    const error = await person.text("search-error");
    if (error) fail(`person: search failed: ${error}`);
    const hits = await person.page.$$eval(`${byTestId("expert-hit")}`,
      (items) => items.map((item) => item.textContent));
    if (hits.some((hit) => hit.includes(flags["expert-name"]))) return hits;
    if (Date.now() > deadline) {
      fail(`person: searching ${flags["category-id"]} never showed ${flags["expert-name"]}; ` +
        `hits: ${JSON.stringify(hits)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

async function fillHelpForm(person, description) {
  await person.fill("help-category", flags["category-id"]);
  await person.fill("help-language", flags.language);
  await person.fill("help-description", description);
  await person.fill("help-budget", flags.budget);
  await person.fill("help-max-minutes", "30");
}

// A request without a description: the server's BadRequest names the field,
// and the page shows it beside the description; no request is made.
async function badInputShowsFieldError(person) {
  await fillHelpForm(person, "");
  await person.click("help-submit");
  await person.waitFor("the description's field error",
    () => document.querySelector("[data-error-for='description']").textContent.trim() ||
      document.querySelector("[data-testid='help-error']").textContent.trim());
  const fieldError = await person.page.$eval("[data-error-for='description']",
    (slot) => slot.textContent.trim());
  if (!fieldError) {
    fail(`person: a request without a description showed no field error at the description; ` +
      `the page shows: ${await person.summary()}`);
  }
  const code = await person.page.$eval(byTestId("help-error"), (line) => line.dataset.code);
  if (code !== "InvalidArgument") fail(`person: the bad request failed with ${code}, not InvalidArgument`);
  if (await person.text("request-status")) {
    fail(`person: a bad request still shows a request: ${await person.text("request-status")}`);
  }
  return fieldError;
}

async function requestWaitsFirstInLine(person) {
  await person.fill("help-description", "My gears slip on the big cog (browser test)");
  await person.click("help-submit");
  await person.waitFor("the request waiting in line",
    () => document.querySelector("[data-testid='request-status']").dataset.status ||
      document.querySelector("[data-testid='help-error']").textContent.trim());
  const error = await person.text("help-error");
  if (error) fail(`person: asking for help failed: ${error}`);
  const [status, position] = await person.page.$eval(byTestId("request-status"),
    (line) => [line.dataset.status, line.dataset.position]);
  const text = await person.text("request-status");
  if (status !== "waiting" || position !== "1" || !text.includes("position 1")) {
    fail(`person: the new request shows "${text}" (status ${status}, position ${position}), ` +
      `not waiting at position 1`);
  }
  return text;
}

async function expertGoesOnlineAndSeesOffer(expert) {
  await expert.click("go-online");
  await expert.waitFor("going online",
    () => document.querySelector("[data-testid='presence']").textContent.startsWith("online") ||
      document.querySelector("[data-testid='expert-error']").textContent.trim());
  const error = await expert.text("expert-error");
  if (error) fail(`expert: going online failed: ${error}`);
  await expert.waitFor("the offer appearing",
    () => !document.querySelector("[data-testid='offer']").hidden ||
      document.querySelector("[data-testid='expert-error']").textContent.trim());
  const watchError = await expert.text("expert-error");
  if (watchError) fail(`expert: watching offers failed: ${watchError}`);
  return await expert.text("offer-text");
}

// Clicks Accept and returns {match_seen_ms, session_id}.
async function acceptAndSeeMatch(person, expert) {
  await expert.click("accept-offer");
  await expert.waitFor("the accepted offer",
    () => document.querySelector("[data-testid='offer-result']").dataset.sessionId !== undefined ||
      document.querySelector("[data-testid='expert-error']").textContent.trim());
  const error = await expert.text("expert-error");
  if (error) fail(`expert: accepting the offer failed: ${error}`);
  const [clickedAt, expertSession] = await expert.page.$eval(byTestId("offer-result"),
    (result) => [Number(result.dataset.acceptClickedAt), result.dataset.sessionId]);

  // Waits longer than the bound, so a slow match is reported with its figure.
  await person.waitFor("the match on the person's page",
    () => document.querySelector("[data-testid='request-status']").dataset.status === "matched",
    undefined, Math.max(timeoutMs, matchWithinMs));
  const [matchedAt, personSession] = await person.page.$eval(byTestId("request-status"),
    (line) => [Number(line.dataset.matchedAt), line.dataset.sessionId]);
  if (!personSession || personSession !== expertSession) {
    fail(`the person's page shows session "${personSession}", the expert's "${expertSession}"`);
  }
  const seenMs = matchedAt - clickedAt;
  if (!(seenMs <= matchWithinMs)) {
    fail(`the person's page showed the match ${seenMs} ms after the expert's click, ` +
      `more than ${matchWithinMs} ms`);
  }
  return { match_seen_ms: seenMs, session_id: personSession };
}

function pageUrl() {
  const url = new URL(flags["page-url"]);
  url.searchParams.set("protocol", flags.protocol);
  return url.href;
}

async function journey(browser, pages) {
  const person = await PageUnderTest.open("person", browser);
  pages.push(person);
  await person.load(pageUrl());
  await person.signIn(flags["person-email"], flags.password);
  const hits = await searchFindsExpert(person);
  const fieldError = await badInputShowsFieldError(person);
  await person.screenshot("person-field-error.png");
  const waiting = await requestWaitsFirstInLine(person);

  const expert = await PageUnderTest.open("expert", browser);
  pages.push(expert);
  await expert.load(pageUrl());
  await expert.signIn(flags["expert-email"], flags.password);
  const offer = await expertGoesOnlineAndSeesOffer(expert);
  await person.waitFor("\"offered\" while the offer is out",
    () => document.querySelector("[data-testid='request-status']").dataset.status === "offered");
  const match = await acceptAndSeeMatch(person, expert);

  for (const page of pages) {
    if (page.pageErrors.length) fail(`${page.who}: uncaught errors: ${page.pageErrors.join("; ")}`);
  }
  return {
    ...match,
    protocol: flags.protocol,
    search_hits: hits.length,
    description_error: fieldError,
    waiting,
    offer,
  };
}

const pages = [];
let browser;
let outcome;
try {
  browser = await puppeteer.launch({
    executablePath: flags.chromium,
    headless: true,
    // As root Chromium needs --no-sandbox; /dev/shm is small in containers.
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  outcome = { ok: true, ...(await journey(browser, pages)) };
} catch (error) {
  outcome = { ok: false, error: error instanceof JourneyFailure ? error.message : String(error?.stack ?? error) };
}
const screenshots = [];
for (const page of pages) {
  page.saveConsole();
  try {
    screenshots.push(await page.screenshot(`${page.who}${outcome.ok ? "" : "-failed"}.png`));
  } catch (error) {
    process.stderr.write(`journey.mjs: no screenshot of the ${page.who}'s page: ${error.message}\n`);
  }
}
await browser?.close();
outcome.screenshots = screenshots;
if (!outcome.ok) process.stderr.write(`journey.mjs: FAILED: ${outcome.error}\n`);
process.stdout.write(`${JSON.stringify(outcome)}\n`);
process.exit(outcome.ok ? 0 : 1);
