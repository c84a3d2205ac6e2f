// End-to-end test of the web demo of `recur serve` in headless Chromium.
//
//   node demo.test.mjs        (after `npm ci` here and `cargo build --release`)
//
// Starts target/release/recur serve (RECUR_BIN overrides) on 127.0.0.1 with a free port,
// drives Debian's /usr/bin/chromium (CHROMIUM overrides; never a downloaded browser) through
// playwright-core: types a romanized sentence and checks the Devanagari appears, types a word
// and checks the n-best list and that the attention heatmap is drawn, and saves a screenshot
// (SCREENSHOT, default target/serve-demo.png). Every step has a timeout; the server is stopped
// with SIGTERM at the end and must exit 0.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "../../../..");
const targetDir = process.env.CARGO_TARGET_DIR || join(root, "target");
const bin = process.env.RECUR_BIN || join(targetDir, "release", "recur");
const browserPath = process.env.CHROMIUM || "/usr/bin/chromium";
const shot = process.env.SCREENSHOT || join(targetDir, "serve-demo.png");

function startServer() {
  return new Promise((resolveStart, rejectStart) => {
    const child = spawn(bin, ["serve", "--model", "hi-translit", "--model", "en-g2p", "--port", "0"], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    const timer = setTimeout(() => rejectStart(new Error("no address within 30 s: " + err)), 30000);
    child.stderr.on("data", (d) => {
      err += d.toString();
      const m = err.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
      if (m) {
        clearTimeout(timer);
        resolveStart({ child, url: m[1] });
      }
    });
    child.on("exit", (code) => rejectStart(new Error(`server exited ${code}: ${err}`)));
  });
}

test("the demo transliterates as you type and draws the attention heatmap", { timeout: 120000 }, async () => {
  assert.ok(existsSync(bin), `no ${bin}: build with cargo build --release first`);
  assert.ok(existsSync(browserPath), `no ${browserPath}: apt-get install chromium`);
  const { child, url } = await startServer();
  const profile = mkdtempSync(join(tmpdir(), "recur-chromium-"));
  let browser;
  try {
    // A persistent context on a new temporary profile (playwright's way to give --user-data-dir).
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: browserPath,
      viewport: { width: 1000, height: 900 },
      headless: true,
      timeout: 60000,
      args: [
        "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
      ],
    });
    const page = browser.pages()[0] || (await browser.newPage());
    page.setDefaultTimeout(20000);
    // Nothing but the server: any other request fails the test.
    const outside = [];
    page.on("request", (r) => { if (!r.url().startsWith(url)) outside.push(r.url()); });
    await page.goto(url + "/");
    await page.waitForSelector("#model option[value='hi-translit']", { state: "attached" });
    await page.selectOption("#model", "hi-translit");
    await page.click("#text");
    await page.keyboard.type("main ghar ja raha hoon", { delay: 40 });
    await page.waitForFunction(() => document.getElementById("output").textContent === "में घर जा रहा हूं");
    // A word: the n-best list and the heatmap.
    await page.fill("#text", "");
    await page.keyboard.type("kitaab", { delay: 40 });
    await page.waitForFunction(() => Number(document.getElementById("heatmap").dataset.drawn) > 0);
    await page.waitForFunction(() => document.getElementById("output").textContent === "किताब");
    const first = await page.textContent("#nbest tbody tr:first-child td:nth-child(2)");
    assert.equal(first, "किताब");
    const rows = await page.locator("#nbest tbody tr").count();
    assert.ok(rows >= 2, `n-best rows: ${rows}`);
    // The heatmap has coloured cells (not only white).
    const coloured = await page.evaluate(() => {
      const c = document.getElementById("heatmap");
      const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) if (d[i + 2] > 200 && d[i] < 150) n++;
      return n;
    });
    assert.ok(coloured > 100, `heatmap pixels: ${coloured}`);
    mkdirSync(dirname(shot), { recursive: true });
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`screenshot: ${shot}`);
    assert.deepEqual(outside, [], "the page asked for something outside the server");
  } finally {
    if (browser) await browser.close();
    rmSync(profile, { recursive: true, force: true });
    const exited = new Promise((r) => child.on("exit", (code, sig) => r({ code, sig })));
    child.kill("SIGTERM");
    const { code } = await Promise.race([exited, new Promise((r) => setTimeout(() => r({ code: "timeout" }), 30000).unref())]);
    assert.equal(code, 0, "the server exits 0 after SIGTERM");
  }
});
