// Drives Debian's firefox-esr for tests/browser/test_engines.py: puppeteer-core over
// WebDriver BiDi (no driver, no browser download).
//
//   node engine_driver.mjs NPM_PREFIX FIREFOX   (NPM_PREFIX: where puppeteer-core is installed)
//
// One JSON command a line on stdin, one JSON answer a line on stdout ({"ok": true,
// "value": ...} or {"ok": false, "error": "..."}); the first line out says the browser is
// up. Commands: goto {url}, eval {js} (an expression; its value, JSON-able), wait {js,
// timeout} (until the expression is truthy), click {selector} (a real pointer click),
// errors (the page's uncaught script errors so far), close.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const [prefix, firefox] = process.argv.slice(2);
const require = createRequire(pathToFileURL(`${prefix}/`));
const puppeteer = require("puppeteer-core");

const send = (answer) => process.stdout.write(`${JSON.stringify(answer)}\n`);

const browser = await puppeteer.launch({
  browser: "firefox",
  executablePath: firefox,
  protocol: "webDriverBiDi",
  headless: true,
  defaultViewport: { width: 1280, height: 900 },
});
const page = await browser.newPage();
const errors = [];
page.on("pageerror", (error) => errors.push(String(error)));
send({ ok: true, value: await browser.version() });

const commands = {
  goto: async ({ url }) => {
    const response = await page.goto(url, { waitUntil: "load" });
    return response ? response.status() : null;
  },
  eval: ({ js }) => page.evaluate(js),
  wait: async ({ js, timeout }) => {
    await page.waitForFunction(js, { timeout, polling: 50 });
    return true;
  },
  click: async ({ selector }) => {
    await page.click(selector);
    return true;
  },
  errors: () => errors,
  close: async () => {
    await browser.close();
    return true;
  },
};

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const command = JSON.parse(line);
  try {
    const value = await commands[command.op](command);
    send({ ok: true, value: value === undefined ? null : value });
  } catch (error) {
    send({ ok: false, error: String(error && error.stack ? error.stack : error) });
  }
  if (command.op === "close") break;
}
await browser.close().catch(() => {});
process.exit(0);
