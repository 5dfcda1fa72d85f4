"""The stepping page's D console over HTTP: the editor and examples on the page, what dtrace prints for the page's
own run (its knobs, its profile, -q), and every kind of bad input answered 4xx in the console's error panel."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlparse

import pytest

from app.routes_trace import MAX_SCRIPT_BYTES
from app.trace_examples import EXAMPLES, LECTURE_PROFILE, LECTURE_SYSCALL_TIMES, LECTURE_TRAPS
from sim.kern.kernel import KernelConfig
from sim.trace.dtrace import run_dtrace
from tests.pages import text_of

DD = "dd if=/dev/zero of=/dev/null bs=10m count=1"
PAGE = "/scenarios/dd-system-time"
CONSOLE = f"{PAGE}/console"
HTMX = {"HX-Request": "true", "HX-Target": "div#console-results"}
BROKEN = 'syscall:::entry /execname == "dd"/ {\n        @calls[probefunc] = count(;\n}\n'
SMALL = {"bs": "64k", "count": "2"}  # a quick run for the checks that only need some run


def error_panel(response) -> dict[str, str]:
    found = re.search(r'<div id="trace-error"([^>]*)>(.*?)</div>', response.text, re.S)
    assert found, "no error panel"
    attributes = dict(re.findall(r'data-([a-z]+)="([^"]*)"', found.group(1)))
    return {**attributes, "text": html.unescape(re.sub(r"<[^>]+>", "", found.group(2)))}


def test_the_stepping_page_carries_the_console_with_the_lectures_scripts_first(client):
    response = client.get(PAGE, params={"step": "40"})
    assert response.status_code == 200
    page = html.unescape(response.text)
    assert 'id="console"' in page and f'hx-get="{CONSOLE}"' in page
    assert f">{LECTURE_SYSCALL_TIMES}</textarea>" in page  # the editor opens with the lecture's first script
    slugs = re.findall(r'data-example="([^"]+)"', response.text)
    assert slugs == [e.slug for e in EXAMPLES]
    scripts = [e.script for e in EXAMPLES[:3]]
    assert scripts == [LECTURE_SYSCALL_TIMES, LECTURE_TRAPS, LECTURE_PROFILE]
    assert "static/console.js?v=" in page and "static/trace.js?v=" in page
    assert 'id="console-link"' in page  # the toolbar's jump to the console


def test_an_embedded_step_has_no_console(client):
    page = client.get(PAGE, params={"embed": "1"}).text
    assert 'id="console"' not in page and "console.js" not in page


def test_the_lectures_first_script_prints_what_dtrace_prints_for_the_pages_run(client):
    response = client.get(CONSOLE, params={"script": LECTURE_SYSCALL_TIMES, "step": "40"}, headers=HTMX)
    assert response.status_code == 200
    expected = run_dtrace(LECTURE_SYSCALL_TIMES, DD, script_name="script.d")
    assert text_of(response.text, "d-stdout") == expected.output
    assert text_of(response.text, "d-stderr") == expected.stderr  # dtrace's own messages, apart from its output
    assert re.search(r"^  read +\d+$", expected.output, re.M)
    assert "HX-Push-Url" not in response.headers  # the stepper's URL (and so its step) stays as it is
    run_id = client.get(PAGE).text.split('data-run-id="', 1)[1].split('"', 1)[0]
    assert f'data-run-id="{run_id}"' in response.text  # the output is for the run the stepper shows
    assert 'id="trace-error" class="trace-error" role="alert" hidden hx-swap-oob="true"' in response.text
    assert 'data-figure="console-aggregation-syscall_time-figure"' in response.text  # drawn with Plotly


def test_the_console_traces_the_pages_knobs_profile_and_quiet_flag(client):
    params = {**SMALL, "profile": "modern", "script": LECTURE_TRAPS, "quiet": "1", "views": "cpu", "step": "3"}
    response = client.get(CONSOLE, params=params, headers=HTMX)
    assert response.status_code == 200
    command = "dd if=/dev/zero of=/dev/null bs=64k count=2"
    expected = run_dtrace(LECTURE_TRAPS, command, profile="modern", quiet=True, script_name="script.d")
    assert text_of(response.text, "d-stdout") == expected.output
    assert html.unescape(response.text).count(f"dtrace -q -s script.d -c '{command}'") == 1
    link = html.unescape(re.search(r'id="console-results-trace-link" href="([^"]+)"', response.text).group(1))
    query = parse_qs(urlparse(link).query)
    assert urlparse(link).path == "/trace"
    assert query == {"command": [command], "profile": ["modern"], "script": [LECTURE_TRAPS], "quiet": ["1"]}


def test_the_any_command_scenario_traces_its_own_command_line(client):
    command = "MALLOC_CONF=junk:false dd if=/dev/zero of=/dev/null bs=128k count=1"
    script = 'syscall::read:entry /execname == "dd"/ { @reads = count(); }'
    response = client.get("/scenarios/command/console", params={"command": command, "script": script}, headers=HTMX)
    assert response.status_code == 200
    assert text_of(response.text, "d-stdout") == run_dtrace(script, command, script_name="script.d").output


def test_a_compile_error_names_its_line_and_column_and_keeps_the_results(client):
    response = client.get(CONSOLE, params={**SMALL, "script": BROKEN}, headers=HTMX)
    assert response.status_code == 400
    assert response.headers["HX-Retarget"] == "#trace-error" and response.headers["HX-Reswap"] == "outerHTML"
    panel = error_panel(response)
    assert (panel["line"], panel["column"], panel["parameter"]) == ("2", "35", "script")
    assert "failed to compile script script.d: line 2" in panel["text"]
    assert "console-results" not in response.text  # only the panel is replaced: the last output stays shown


@pytest.mark.parametrize(
    ("params", "status", "parameter", "says"),
    [
        ({"script": "x" * (MAX_SCRIPT_BYTES + 1)}, 422, "script", f"the limit is {MAX_SCRIPT_BYTES:,}"),
        ({"script": "   \n"}, 422, "script", "the editor is empty"),
        ({"script": [LECTURE_TRAPS, LECTURE_TRAPS]}, 422, "script", "given 2 times"),
        ({"script": LECTURE_TRAPS, "bs": "zz"}, 422, "bs", "must be a size such as 4096"),
        ({"script": LECTURE_TRAPS, "bs": "1g"}, 422, "bs", "on the web"),
        ({"script": LECTURE_TRAPS, "profile": "pdp11"}, 422, "profile", "must be one of"),
        ({"script": LECTURE_TRAPS, "smap": "maybe"}, 422, "smap", "must be 1 or 0"),
        ({"script": LECTURE_TRAPS, "command": "getpid"}, 422, "command", "does not apply to scenario"),
        ({"script": LECTURE_TRAPS, "color": "red"}, 422, "color", "is not one this page takes"),
        ({"script": "syscall:::entry { trace(nosuch(1)); }"}, 400, "script", "line 1"),
        ({"script": "nosuchprovider:::entry { }"}, 400, "script", "nosuchprovider"),
    ],
)
def test_bad_input_is_a_4xx_naming_what_is_wrong_in_the_console(client, params, status, parameter, says):
    response = client.get(CONSOLE, params={**SMALL, **params}, headers=HTMX)
    assert response.status_code == status, response.text
    panel = error_panel(response)
    assert panel["parameter"] == parameter
    assert says in panel["text"]


def test_an_unknown_scenario_is_a_404_in_the_console(client):
    response = client.get("/scenarios/nosuch/console", params={"script": LECTURE_TRAPS}, headers=HTMX)
    assert response.status_code == 404
    assert "no scenario named 'nosuch'" in error_panel(response)["text"]


def test_the_console_traces_with_the_pages_kernel_switches_and_says_the_trace_page_will_not(client):
    command = "dd if=/dev/zero of=/dev/null bs=64k count=2"
    response = client.get(CONSOLE, params={**SMALL, "smap": "1", "script": LECTURE_SYSCALL_TIMES}, headers=HTMX)
    assert response.status_code == 200
    with_smap = run_dtrace(LECTURE_SYSCALL_TIMES, command, config=KernelConfig(smap=True), script_name="script.d")
    without_smap = run_dtrace(LECTURE_SYSCALL_TIMES, command, script_name="script.d")  # FreeBSD 11: no SMAP
    assert without_smap.output != with_smap.output  # stac/clac around every copy cost time only with SMAP on
    assert text_of(response.text, "d-stdout") == with_smap.output
    assert "SMAP (CR4.SMAP) on" in html.unescape(response.text)


def test_without_javascript_the_console_opens_the_program_on_the_trace_page(client):
    response = client.get(CONSOLE, params={**SMALL, "script": LECTURE_TRAPS, "quiet": "1"}, follow_redirects=False)
    assert response.status_code == 303
    location = urlparse(response.headers["location"])
    query = parse_qs(location.query)
    assert location.path == "/trace"
    assert query["command"] == ["dd if=/dev/zero of=/dev/null bs=64k count=2"] and query["script"] == [LECTURE_TRAPS]
    bad = client.get(CONSOLE, params={"bs": "zz", "script": "x"}, follow_redirects=False)
    assert bad.status_code == 422 and "query parameter &#39;bs&#39;" in bad.text


def test_the_forms_hidden_fields_hold_the_pages_run_for_a_browser_without_javascript(client):
    page = client.get(PAGE, params={**SMALL, "profile": "modern", "step": "3", "views": "cpu"}).text
    form = page[page.index('<form id="trace-form"') : page.index("</form>", page.index('<form id="trace-form"'))]
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form)
    assert hidden == [("bs", "64k"), ("count", "2"), ("profile", "modern")]  # the run, not the step or the views


def test_on_another_programs_page_the_examples_name_that_program(client):
    page = html.unescape(client.get("/scenarios/fork-returns-twice").text)
    fork_first = LECTURE_SYSCALL_TIMES.replace('execname == "dd"', 'execname == "fork"')
    assert f">{fork_first}</textarea>" in page  # the lecture's D, its predicate naming this page's program
    assert 'execname == "dd"' not in page
    response = client.get(
        "/scenarios/fork-returns-twice/console", params={"script": fork_first, "quiet": "1"}, headers=HTMX
    )
    assert response.status_code == 200
    assert re.search(r"^  fork +\d+$", text_of(response.text, "d-stdout"), re.M)  # fork's own syscall, timed


def test_a_program_in_the_pages_url_opens_in_the_editor_to_be_traced_again(client):
    response = client.get(PAGE, params={**SMALL, "step": "3", "script": LECTURE_TRAPS, "quiet": "1"})
    assert response.status_code == 200
    page = html.unescape(response.text)
    assert f">{LECTURE_TRAPS}</textarea>" in page, "the URL's program, not the first example"
    form = page[page.index('<form id="trace-form"') : page.index("</form>", page.index('<form id="trace-form"'))]
    assert 'data-trace-on-load="true"' in form, "static/console.js traces it as the page opens"
    assert re.search(r'<input id="console-quiet" type="checkbox" name="quiet" value="1" checked>', form)
    plain = html.unescape(client.get(PAGE, params={**SMALL, "step": "3"}).text)
    assert "data-trace-on-load" not in plain and f">{LECTURE_TRAPS}</textarea>" not in plain


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"script": "x" * (MAX_SCRIPT_BYTES + 1)}, f"the limit is {MAX_SCRIPT_BYTES:,}"),
        ({"script": [LECTURE_TRAPS, LECTURE_TRAPS]}, "given 2 times"),
    ],
)
def test_a_program_in_the_pages_url_over_the_limit_is_a_4xx_naming_it(client, params, says):
    response = client.get(PAGE, params={**SMALL, "step": "3", **params})
    assert response.status_code == 422, response.status_code
    assert "script" in html.unescape(response.text) and says in html.unescape(response.text)


def test_a_redirect_to_the_canonical_url_keeps_the_program(client):
    response = client.get(PAGE, params={**SMALL, "step": "999999", "script": LECTURE_TRAPS}, follow_redirects=False)
    assert response.status_code == 303
    query = parse_qs(urlparse(response.headers["location"]).query)
    assert query["script"] == [LECTURE_TRAPS] and query["step"] != ["999999"]
