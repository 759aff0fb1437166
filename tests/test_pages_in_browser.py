"""report.html and runs/index.html as a browser shows them: headless Chromium renders each page with a
probe script added, which reports what is displayed (overflow, images, rows, sorting) into the DOM
that Chromium then dumps. Skipped where no Chromium is installed (.ci/run installs Debian's)."""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = next((found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))),
                None)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (apt-get install chromium)")]

PROBE = """
<script>
window.addEventListener("load", () => setTimeout(() => {
  const page = document.documentElement, found = {};
  found.page_overflows = page.scrollWidth > page.clientWidth + 1;
  found.pre_overflows = [...document.querySelectorAll("pre")].filter(p => p.scrollWidth > p.clientWidth + 1).length;
  found.pres = document.querySelectorAll("pre").length;
  found.images = [...document.images].map(i => i.complete && i.naturalWidth > 0);
  found.rows = document.querySelectorAll("tbody tr, table tr").length;
  found.verdict = (document.querySelector(".verdict") || {}).innerText || "";
  found.text = document.body.innerText.slice(0, 20000);
  const sortable = document.querySelector("#runs");
  if (sortable) {
    const column = [...sortable.tHead.rows[0].cells].findIndex(c => c.innerText == "wall s");
    const values = () => [...sortable.tBodies[0].rows].map(r => Number(r.cells[column].dataset.key));
    sortable.tHead.rows[0].cells[column].click();
    found.sorted_down = values();
    sortable.tHead.rows[0].cells[column].click();
    found.sorted_up = values();
  }
  const out = document.createElement("pre");
  out.id = "dlx-probe";
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
}, 300));
</script>
"""


def displayed(page: Path, tmp_path: Path) -> dict:
    """What Chromium displays of ``page`` (a copy with the probe, beside the original so links resolve)."""
    probed = page.with_name(f".probe-{page.name}")
    probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    try:
        done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                               "--no-first-run", "--disable-background-networking", "--disable-component-update",
                               "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1280,900",
                               "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()],
                              capture_output=True, text=True, timeout=120)
    finally:
        probed.unlink()
    found = re.search(r'<pre id="dlx-probe">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the probe did not report: {done.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&amp;", "&"))


@pytest.mark.parametrize("name", ["mnist-cnn", "text-gen", "cf-regularized", "word-embeddings"])
def test_report_displays_whole_with_its_images_and_verdict(name, default_runs, tmp_path):
    run_dir, metrics = default_runs[name]
    shown = displayed(run_dir / "report.html", tmp_path)
    assert not shown["page_overflows"] and shown["pre_overflows"] == 0
    assert shown["images"] and all(shown["images"])
    assert shown["verdict"] == metrics["verdict"]["text"]
    assert metrics["run_id"] in shown["text"] and "pipeline.log" in shown["text"]
    if name == "text-gen":
        assert shown["pres"] >= len(metrics["samples"])  # the samples, wrapped inside the page


def test_runs_index_lists_every_run_and_sorts(default_runs, tmp_path):
    runs = next(iter(default_runs.values()))[0].parent
    shown = displayed(runs / "index.html", tmp_path)
    assert shown["rows"] == len(default_runs) + 1  # the heading row
    assert not shown["page_overflows"]
    assert shown["sorted_down"] == sorted(shown["sorted_down"], reverse=True)
    assert shown["sorted_up"] == sorted(shown["sorted_up"])
    for _, metrics in default_runs.values():
        assert metrics["run_id"] in shown["text"]
