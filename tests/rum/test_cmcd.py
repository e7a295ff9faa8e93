"""CTA-5004 decoding: the syntax rules, our two field rules, and the SVTA decoder as the oracle."""

from __future__ import annotations

import json
import shutil
import subprocess

from rum.cmcd import decode, from_query
from tests.browser.harness import NODE_MODULES, REPO, unavailable

#: Payloads as hls.js, dash.js and shaka-player send them, and spec examples (CTA-5004 §5).
SAMPLES = (
    'br=3200,bs,d=4004,mtp=25400,ot=v,rtp=15000,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",'
    'tb=6000',
    'bl=21300,br=3200,bs,cid="faec5fc2-ac30-11eabb37-0242ac130002",d=4004,dl=18500,mtp=48100,'
    'nor="..%2F300kbps%2Ftrack.m4v",nrr="12323-48763",ot=v,pr=1.08,rtp=12000,sf=d,'
    'sid="6e2fb550-c457-11e9-bb97-0800200c9a66",st=v,su,tb=6000',
    'cid="a,b\\"c",sid="x\\\\y",ot=m,sf=h,st=l,v=1',
    "com.example-mynumerickey=500,com.example-mystringkey=\"myStringValue\",ot=i",
    "bs,su,ot=av",
)


def test_bare_key_is_boolean_true() -> None:
    cmcd = decode("bs,su,br=800")
    assert cmcd.data == {"bs": True, "su": True, "br": 800}
    assert cmcd.malformed == ()


def test_quoted_string_keeps_commas_and_escapes() -> None:
    cmcd = decode('cid="a,b\\"c",sid="x\\\\y"')
    assert cmcd.data == {"cid": 'a,b"c', "sid": "x\\y"}


def test_query_parameter_is_url_decoded() -> None:
    cmcd = from_query("x=1&CMCD=bl%3D21300%2Cbr%3D3200%2Cbs%2Csid%3D%226e2f%22&y=2")
    assert cmcd is not None
    assert cmcd.data == {"bl": 21300, "br": 3200, "bs": True, "sid": "6e2f"}
    assert from_query("x=1") is None


def test_unknown_keys_are_kept() -> None:
    cmcd = decode('com.example-x="y",zz=tok,ltc=120')
    assert cmcd.data == {"com.example-x": "y", "zz": "tok", "ltc": 120}


def test_malformed_values_are_counted_and_skipped() -> None:
    cmcd = decode('br="3200",bl=-4,ot=q,mtp=12x,sid="open,su,d=4004')
    assert cmcd.malformed == ("br", "bl", "ot", "mtp", "sid")
    assert cmcd.data == {}
    good = decode("br=abc,d=4004")
    assert good.data == {"d": 4004}
    assert good.malformed == ("br",)


def oracle(payloads: list[str]) -> list[dict[str, object]]:
    """@svta/cml-cmcd's decodeCmcd of each payload, run in node."""
    if shutil.which("node") is None or not (NODE_MODULES / "@svta" / "cml-cmcd").is_dir():
        unavailable("node or node_modules/@svta/cml-cmcd missing")  # a skip, a failure in CI
    script = ("import { decodeCmcd } from '@svta/cml-cmcd';"
              "import { readFileSync } from 'node:fs';"
              "const xs = JSON.parse(readFileSync(0, 'utf8'));"
              "process.stdout.write(JSON.stringify(xs.map((x) => decodeCmcd(x))));")
    done = subprocess.run(["node", "--input-type=module", "-e", script], cwd=REPO,
                          input=json.dumps(payloads), capture_output=True, text=True,
                          check=True)
    result: list[dict[str, object]] = json.loads(done.stdout)
    return result


def test_decode_equals_the_svta_decoder() -> None:
    expected = oracle(list(SAMPLES))
    assert len(expected) == len(SAMPLES)
    for payload, theirs in zip(SAMPLES, expected, strict=True):
        ours = decode(payload)
        assert ours.malformed == (), payload
        assert ours.data == theirs, payload
