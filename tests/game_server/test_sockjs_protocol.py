"""Every SockJS transport against the protocol-test endpoints, over raw HTTP and websocket,
by the SockJS 0.3 protocol (sockjs-protocol's test suite, translated to aiohttp's client).

Where the 0.3.3 suite and its later 0.3 revision differ, the later one is followed (as the
`sockjs` package does): `Cache-Control` includes `no-transform`, jsonp bodies start with
`/**/` (the Rosetta-Flash fix of sockjs-node 0.3.10).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid

import aiohttp
import pytest
from aiohttp import WSMsgType

from game_server.conformance import RESPONSE_LIMIT, build_conformance_app

NOT_CACHED = "no-store, no-cache, no-transform, must-revalidate, max-age=0"
T = 5.0  # seconds: the bound of every single network wait


@pytest.fixture
async def client(aiohttp_client):
    return await aiohttp_client(build_conformance_app(disconnect_delay=1.0))


def sid(base: str = "/echo") -> str:
    return f"{base}/000/{uuid.uuid4()}"


async def post(client, url: str, body: str | bytes = b"", headers=None) -> tuple[int, str, dict]:
    async with asyncio.timeout(T):
        r = await client.post(url, data=body, headers=headers or {})
        return r.status, await r.text(), r.headers


async def get(client, url: str, headers=None) -> tuple[int, str, dict]:
    async with asyncio.timeout(T):
        r = await client.get(url, headers=headers or {})
        return r.status, await r.text(), r.headers


async def chunk(resp: aiohttp.ClientResponse, sep: bytes = b"\n") -> str:
    """The next frame of a streaming response: bytes up to and including `sep`."""
    async with asyncio.timeout(T):
        return (await resp.content.readuntil(sep)).decode()


async def at_eof(resp: aiohttp.ClientResponse) -> bool:
    async with asyncio.timeout(T):
        return await resp.content.read() == b""


def verify_cors(headers, origin: str | None = None) -> None:
    expected = origin or "*"  # `Origin: null` is echoed, as SockJS 0.3 specifies
    assert headers["Access-Control-Allow-Origin"] == expected
    assert headers["Access-Control-Allow-Credentials"] == "true"


def verify_not_cached(headers) -> None:
    assert headers["Cache-Control"] == NOT_CACHED
    assert "Expires" not in headers and "Last-Modified" not in headers


# ---------------------------------------------------------------- static URLs


async def test_greeting_and_not_found(client):
    for url in ("/echo", "/echo/"):
        status, body, h = await get(client, url)
        assert (status, body) == (200, "Welcome to SockJS!\n")
        assert h["Content-Type"].replace(" ", "") == "text/plain;charset=UTF-8"
        assert "Set-Cookie" not in h
    for suffix in ("/a", "/a.html", "//", "///", "/a/a", "/a/a/", "/a/"):
        assert (await get(client, "/echo" + suffix))[0] == 404, suffix


async def test_iframe_page_cacheable_and_versioned(client):
    etags = set()
    for suffix in ("/iframe.html", "/iframe-a.html", "/iframe-.html", "/iframe-0.1.2.html",
                   "/iframe-0.1.2abc-dirty.2144.html", "/iframe-a.html?t=1234"):
        status, body, h = await get(client, "/echo" + suffix)
        assert status == 200, suffix
        assert h["Content-Type"].replace(" ", "") == "text/html;charset=UTF-8"
        assert "public" in h["Cache-Control"]
        assert re.search("max-age=[1-9][0-9]{6}", h["Cache-Control"])
        assert h["Expires"] and "Last-Modified" not in h and "Set-Cookie" not in h
        assert "SockJS.bootstrap_iframe()" in body and 'src="http' in body
        etags.add(h["ETag"])
    assert len(etags) == 1
    status, body, h = await get(client, "/echo/iframe.html", {"If-None-Match": etags.pop()})
    assert status == 304 and body == "" and not h.get("Content-Type")
    for suffix in ("/iframe.htm", "/iframe", "/IFRAME.HTML", "/iframe.HTML", "/iframe-/.html"):
        assert (await get(client, "/echo" + suffix))[0] == 404, suffix


async def test_info(client):
    status, body, h = await get(client, "/echo/info")
    assert status == 200
    assert h["Content-Type"].replace(" ", "") == "application/json;charset=UTF-8"
    assert "Set-Cookie" not in h
    verify_not_cached(h)
    verify_cors(h)
    data = json.loads(body)
    assert data["websocket"] is True and data["cookie_needed"] is False
    assert data["origins"] == ["*:*"]
    assert isinstance(data["entropy"], int)
    again = json.loads((await get(client, "/echo/info"))[1])
    assert again["entropy"] != data["entropy"]
    off = json.loads((await get(client, "/disabled_websocket_echo/info"))[1])
    assert off["websocket"] is False


# ---------------------------------------------------------------- CORS (fault 1)


@pytest.mark.parametrize("url,methods", [
    ("/echo/info", "OPTIONS, GET"),
    ("/echo/abc/abc/xhr", "OPTIONS, POST"),
    ("/echo/abc/abc/xhr_send", "OPTIONS, POST"),
    ("/echo/abc/abc/xhr_streaming", "OPTIONS, POST"),
])
async def test_options_preflight(client, url, methods):
    for origin in (None, "http://lobby.example", "null"):
        headers = {"Origin": origin} if origin else {}
        headers["Access-Control-Request-Headers"] = "content-type, x-a"
        async with asyncio.timeout(T):
            r = await client.options(url, headers=headers)
            body = await r.read()
        assert r.status == 204 and body == b""
        assert "public" in r.headers["Cache-Control"]
        assert "max-age=31536000" in r.headers["Cache-Control"]
        assert r.headers["Expires"]
        assert int(r.headers["Access-Control-Max-Age"]) == 31536000
        assert r.headers["Access-Control-Allow-Methods"] == methods
        assert r.headers["Access-Control-Allow-Headers"] == "content-type, x-a"
        verify_cors(r.headers, origin)


async def test_cors_on_xhr_family_responses(client):
    url = sid()
    origin = {"Origin": "http://lobby.example"}
    status, body, h = await post(client, url + "/xhr", headers={
        **origin, "Access-Control-Request-Headers": "a, b, c"})
    assert (status, body) == (200, "o\n")
    verify_cors(h, "http://lobby.example")
    assert h["Access-Control-Allow-Headers"] == "a, b, c"
    status, body, h = await post(client, url + "/xhr_send", '["x"]', origin)
    assert status == 204
    verify_cors(h, "http://lobby.example")
    assert "Access-Control-Allow-Headers" not in h
    async with asyncio.timeout(T):
        r = await client.post(sid() + "/xhr_streaming", headers={"Origin": "null"})
        verify_cors(r.headers, "null")
        r.close()
    # Not on the transports SockJS does not serve over CORS.
    status, body, h = await get(client, sid() + "/jsonp?c=x", origin)
    assert "Access-Control-Allow-Origin" not in h
    async with asyncio.timeout(T):
        r = await client.options(sid() + "/jsonp")
    assert r.status == 405


# ---------------------------------------------------------------- session URLs, framing


async def test_session_urls(client):
    for part in ("/a/a", "/_/_", "/1/1", "/abcdefgh_i-j%20/abcdefg_i-j%20"):
        assert (await post(client, "/echo" + part + "/xhr"))[:2] == (200, "o\n")
    for suffix in ("//", "/a./a", "/a/a.", "/./.", "/", "///"):
        assert (await get(client, "/echo" + suffix + "/xhr"))[0] == 404, suffix
        assert (await post(client, "/echo" + suffix + "/xhr"))[0] == 404, suffix
    # The server id is ignored: only the session id names a session.
    session = str(uuid.uuid4())
    assert (await post(client, f"/echo/000/{session}/xhr"))[1] == "o\n"
    assert (await post(client, f"/echo/000/{session}/xhr_send", '["a"]'))[0] == 204
    assert (await post(client, f"/echo/999/{session}/xhr"))[1] == 'a["a"]\n'


async def test_xhr_polling(client):
    url = sid()
    status, body, h = await post(client, url + "/xhr")
    assert (status, body) == (200, "o\n")
    assert h["Content-Type"].replace(" ", "") == "application/javascript;charset=UTF-8"
    verify_not_cached(h)
    assert "Set-Cookie" not in h  # cookie_needed is off on /echo
    status, body, h = await post(client, url + "/xhr_send", '["x"]')
    assert (status, body) == (204, "")
    assert h["Content-Type"] == "text/plain; charset=UTF-8"
    verify_not_cached(h)
    assert (await post(client, url + "/xhr"))[:2] == (200, 'a["x"]\n')
    # Unknown session, broken JSON, no payload.
    assert (await post(client, sid() + "/xhr_send", '["x"]'))[0] == 404
    status, body, _ = await post(client, url + "/xhr_send", '["x')
    assert status == 500 and "Broken JSON encoding." in body
    status, body, _ = await post(client, url + "/xhr_send", "")
    assert status == 500 and "Payload expected." in body
    # Not an array, not UTF-8: refused, and nothing reaches the session.
    for bad in ('"abc"', '{"a": 1}', "5", "null", b'["\xff"]'):
        status, body, _ = await post(client, url + "/xhr_send", bad)
        assert status == 500 and "Broken JSON encoding." in body, bad
    # Any content type is accepted.
    ctypes = ["text/plain", "T", "application/json", "application/xml", "",
              "application/json; charset=utf-8", "text/xml; charset=utf-8", "text/xml"]
    for ct in ctypes:
        assert (await post(client, url + "/xhr_send", '["a"]', {"Content-Type": ct}))[0] == 204
    assert (await post(client, url + "/xhr"))[1] == "a[" + ",".join(['"a"'] * len(ctypes)) + "]\n"


async def test_json_unicode_roundtrip(client):
    url = sid()
    await post(client, url + "/xhr")
    text = "\u00e9\u4e2d\U0001f600 \\ \" \x00\n\u2028\ufff0"
    assert (await post(client, url + "/xhr_send", json.dumps([text])))[0] == 204
    body = (await post(client, url + "/xhr"))[1]
    assert body.startswith("a") and json.loads(body[1:]) == [text]


async def test_close_endpoint_polling(client):
    url = sid("/close")
    assert (await post(client, url + "/xhr"))[1] == "o\n"
    for _ in range(2):  # until the session times out, the close frame is served again
        assert (await post(client, url + "/xhr"))[:2] == (200, 'c[3000,"Go away!"]\n')


async def test_concurrent_poll_refused(client):
    url = sid()
    assert (await post(client, url + "/xhr"))[1] == "o\n"
    first = asyncio.ensure_future(post(client, url + "/xhr"))
    await asyncio.sleep(0.1)
    assert (await post(client, url + "/xhr"))[:2] == (200, 'c[2010,"Another connection still open"]\n')
    assert (await post(client, url + "/xhr_send", '["still here"]'))[0] == 204
    assert (await first)[1] == 'a["still here"]\n'


# ---------------------------------------------------------------- streaming transports


async def test_xhr_streaming(client):
    url = sid()
    async with asyncio.timeout(T):
        r = await client.post(url + "/xhr_streaming")
    assert r.status == 200
    assert r.headers["Content-Type"].replace(" ", "") == "application/javascript;charset=UTF-8"
    verify_not_cached(r.headers)
    verify_cors(r.headers)
    assert await chunk(r) == "h" * 2048 + "\n"
    assert await chunk(r) == "o\n"
    assert (await post(client, url + "/xhr_send", '["x"]'))[0] == 204
    assert await chunk(r) == 'a["x"]\n'
    r.close()


async def test_xhr_streaming_response_limit(client):
    url = sid()
    async with asyncio.timeout(T):
        r = await client.post(url + "/xhr_streaming")
    await chunk(r)
    assert await chunk(r) == "o\n"
    msg = '"' + "x" * 128 + '"'
    sent = 2
    while sent <= RESPONSE_LIMIT:
        assert (await post(client, url + "/xhr_send", "[" + msg + "]"))[0] == 204
        assert await chunk(r) == "a[" + msg + "]\n"
        sent += len(msg) + 4
    assert sent > RESPONSE_LIMIT and await at_eof(r)  # 31 messages, as in the 0.3 suite
    # The session lives on: the next streaming request continues it.
    async with asyncio.timeout(T):
        r = await client.post(url + "/xhr_streaming")
    await chunk(r)
    assert (await post(client, url + "/xhr_send", '["y"]'))[0] == 204
    assert await chunk(r) == 'a["y"]\n'
    r.close()


async def test_eventsource(client):
    url = sid()
    async with asyncio.timeout(T):
        r = await client.get(url + "/eventsource")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/event-stream")
    verify_not_cached(r.headers)
    assert await chunk(r, b"\r\n") == "\r\n"
    assert await chunk(r, b"\r\n\r\n") == "data: o\r\n\r\n"
    assert (await post(client, url + "/xhr_send", '["x"]'))[0] == 204
    assert await chunk(r, b"\r\n\r\n") == 'data: a["x"]\r\n\r\n'
    assert (await post(client, url + "/xhr_send", r'["  \u0000\n\r "]'))[0] == 204
    assert await chunk(r, b"\r\n\r\n") == 'data: a["  \\u0000\\n\\r "]\r\n\r\n'
    # Response limit: one message above 4096 bytes ends the response.
    msg = '"' + "x" * RESPONSE_LIMIT + '"'
    assert (await post(client, url + "/xhr_send", "[" + msg + "]"))[0] == 204
    assert await chunk(r, b"\r\n\r\n") == "data: a[" + msg + "]\r\n\r\n"
    assert await at_eof(r)


HTMLFILE_HEAD = """
<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.%s;
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>
""".strip()


async def test_htmlfile(client):
    url = sid()
    async with asyncio.timeout(T):
        r = await client.get(url + "/htmlfile?c=%63allback")
    assert r.status == 200
    assert r.headers["Content-Type"].replace(" ", "") == "text/html;charset=UTF-8"
    verify_not_cached(r.headers)
    async with asyncio.timeout(T):
        prelude = (await r.content.readuntil(b"</script>")).decode()
        prelude += (await r.content.readexactly(1024)).decode()
    assert prelude.strip() == HTMLFILE_HEAD % "callback" and len(prelude) > 1024
    assert await chunk(r, b"\r\n") == '<script>\np("o");\n</script>\r\n'
    assert (await post(client, url + "/xhr_send", '["x"]'))[0] == 204
    assert await chunk(r, b"\r\n") == '<script>\np("a[\\"x\\"]");\n</script>\r\n'
    msg = "x" * RESPONSE_LIMIT
    assert (await post(client, url + "/xhr_send", '["' + msg + '"]'))[0] == 204
    assert await chunk(r, b"\r\n") == '<script>\np("a[\\"' + msg + '\\"]");\n</script>\r\n'
    assert await at_eof(r)
    for bad in ("/a/a/htmlfile", "/a/b/htmlfile?c=a(b)"):
        status, body, _ = await get(client, "/echo" + bad)
        assert status == 500 and "callback" in body


async def test_jsonp(client):
    url = sid()
    status, body, h = await get(client, url + "/jsonp?c=%63allback")
    assert (status, body) == (200, '/**/callback("o");\r\n')
    assert h["Content-Type"].replace(" ", "") == "application/javascript;charset=UTF-8"
    verify_not_cached(h)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, body, h = await post(client, url + "/jsonp_send", "d=%5B%22x%22%5D", form)
    assert (status, body) == (200, "ok")
    assert h["Content-Type"].replace(" ", "") == "text/plain;charset=UTF-8"
    verify_not_cached(h)
    assert (await post(client, url + "/jsonp_send", '["%61bc"]', {"Content-Type": "text/plain"}))[1] == "ok"
    assert (await get(client, url + "/jsonp?c=x"))[1] == '/**/x("a[\\"x\\",\\"%61bc\\"]");\r\n'
    status, body, _ = await post(client, url + "/jsonp_send", "d=%5B%22x", form)
    assert status == 500 and "Broken JSON encoding." in body
    for bad, headers in ((b'["\xff"]', {"Content-Type": "text/plain"}), ("d=%22x%22", form),
                         (b"d=\xff", form)):
        status, body, _ = await post(client, url + "/jsonp_send", bad, headers)
        assert status == 500 and "Broken JSON encoding." in body, bad
    for data in ("", "d=", "p=p"):
        status, body, _ = await post(client, url + "/jsonp_send", data, form)
        assert status == 500 and "Payload expected." in body, data
    assert (await get(client, "/echo/a/a/jsonp"))[0] == 500
    closing = sid("/close")
    assert (await get(client, closing + "/jsonp?c=x"))[1] == '/**/x("o");\r\n'
    for _ in range(2):
        assert (await get(client, closing + "/jsonp?c=x"))[1] == '/**/x("c[3000,\\"Go away!\\"]");\r\n'


# ---------------------------------------------------------------- websocket transport


async def ws_connect(client, url: str) -> aiohttp.ClientWebSocketResponse:
    async with asyncio.timeout(T):
        return await client.ws_connect(url, autoclose=False)


async def recv(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    return await ws.receive(timeout=T)


async def test_websocket_transport(client):
    ws = await ws_connect(client, sid() + "/websocket")
    assert (await recv(ws)).data == "o"
    await ws.send_str("")  # empty frames are ignored
    await ws.send_str('["a"]')
    assert (await recv(ws)).data == 'a["a"]'
    await ws.send_str('"b"')  # a single JSON string is one message too
    assert (await recv(ws)).data == 'a["b"]'
    await ws.close()


async def test_websocket_close_endpoint(client):
    ws = await ws_connect(client, sid("/close") + "/websocket")
    assert (await recv(ws)).data == "o"
    assert (await recv(ws)).data == 'c[3000,"Go away!"]'
    assert (await recv(ws)).type is WSMsgType.CLOSE


async def test_websocket_reuse_session_id(client):
    url = sid() + "/websocket"
    ws1, ws2 = await ws_connect(client, url), await ws_connect(client, url)
    assert (await recv(ws1)).data == "o" and (await recv(ws2)).data == "o"
    await ws1.send_str('["a"]')
    await ws2.send_str('["b"]')
    assert (await recv(ws1)).data == 'a["a"]'
    assert (await recv(ws2)).data == 'a["b"]'
    await ws1.close()
    await ws2.close()
    ws1 = await ws_connect(client, url)
    assert (await recv(ws1)).data == "o"
    await ws1.close()


async def test_websocket_broken_json_closes(client):
    ws = await ws_connect(client, sid() + "/websocket")
    assert (await recv(ws)).data == "o"
    await ws.send_str('["a')
    msg = await recv(ws)
    assert msg.type is WSMsgType.CLOSE and msg.data == 1002


async def test_websocket_http_errors(client):
    url = sid() + "/websocket"
    assert (await get(client, url))[0] == 400
    for headers in ({"Upgrade": "WebSocket", "Connection": "Upgrade"}, {}):
        async with asyncio.timeout(T):
            r = await client.post(url, headers=headers)
            body = await r.read()
        assert r.status == 405 and r.headers["Allow"] == "GET" and body == b""
        assert "Content-Type" not in r.headers
    assert (await get(client, sid("/disabled_websocket_echo") + "/websocket"))[0] == 404


# ---------------------------------------------------------------- JSESSIONID (cookie_needed)


def verify_cookie(headers, value: str = "dummy") -> None:
    parts = headers["Set-Cookie"].split(";")
    assert parts[0].strip() == f"JSESSIONID={value}"
    assert parts[1].strip().lower() == "path=/"


async def test_cookie_needed(client):
    # The test client's cookie jar would send our cookie back: drop it before each check.
    jar = client.session.cookie_jar
    status, body, h = await get(client, "/cookie_needed_echo/info")
    assert json.loads(body)["cookie_needed"] is True and "Set-Cookie" not in h
    url = sid("/cookie_needed_echo")
    status, body, h = await post(client, url + "/xhr")
    assert body == "o\n"
    verify_cookie(h)
    jar.clear()
    h = (await post(client, sid("/cookie_needed_echo") + "/xhr",
                    headers={"Cookie": "JSESSIONID=abcdef"}))[2]
    verify_cookie(h, "abcdef")  # the client's cookie is echoed
    for transport, method in (("/xhr_streaming", "POST"), ("/eventsource", "GET"),
                              ("/htmlfile?c=cb", "GET")):
        jar.clear()
        async with asyncio.timeout(T):
            r = await client.request(method, sid("/cookie_needed_echo") + transport)
            verify_cookie(r.headers)
            r.close()
    jar.clear()
    url = sid("/cookie_needed_echo")
    status, body, h = await get(client, url + "/jsonp?c=cb")
    assert body == '/**/cb("o");\r\n'
    verify_cookie(h)
    jar.clear()
    h = (await post(client, url + "/jsonp_send", "d=%5B%22x%22%5D",
                    {"Content-Type": "application/x-www-form-urlencoded"}))[2]
    verify_cookie(h)
    jar.clear()
    h = (await post(client, url + "/xhr_send", '["x"]'))[2]
    verify_cookie(h)
    jar.clear()
    async with asyncio.timeout(T):
        r = await client.options(sid("/cookie_needed_echo") + "/xhr")
    verify_cookie(r.headers)


# ---------------------------------------------------------------- handling close


async def test_close_frame_on_streaming(client):
    url = sid("/close")
    async with asyncio.timeout(T):
        r1 = await client.post(url + "/xhr_streaming")
    await chunk(r1)
    assert await chunk(r1) == "o\n"
    assert await chunk(r1) == 'c[3000,"Go away!"]\n'
    async with asyncio.timeout(T):
        r2 = await client.post(url + "/xhr_streaming")
    await chunk(r2)
    assert await chunk(r2) == 'c[3000,"Go away!"]\n'
    assert await at_eof(r1) and await at_eof(r2)


async def test_second_streaming_request_refused(client):
    url = sid()
    async with asyncio.timeout(T):
        r1 = await client.post(url + "/xhr_streaming")
    await chunk(r1)
    assert await chunk(r1) == "o\n"
    async with asyncio.timeout(T):
        r2 = await client.post(url + "/xhr_streaming")
    await chunk(r2)
    assert await chunk(r2) == 'c[2010,"Another connection still open"]\n'
    assert await at_eof(r2)
    # The first request still holds a live session.
    assert (await post(client, url + "/xhr_send", '["x"]'))[0] == 204
    assert await chunk(r1) == 'a["x"]\n'
    r1.close()


async def test_http10_streaming_is_closed_after_close_frame(client):
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    path = sid("/close") + "/xhr_streaming"
    writer.write(f"POST {path} HTTP/1.0\r\nHost: {host}\r\nConnection: Keep-Alive\r\n"
                 "Content-Length: 0\r\n\r\n".encode())
    async with asyncio.timeout(T):
        data = await reader.read()  # until the server closes the connection
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.") and b" 200 " in head.split(b"\r\n")[0]
    assert b"transfer-encoding" not in head.lower() and b"content-length" not in head.lower()
    assert body == b"h" * 2048 + b'\no\nc[3000,"Go away!"]\n'
