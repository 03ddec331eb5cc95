"""The node serves sockjs-client itself to SockJS's iframe transports: nothing from a CDN."""

from game_server.app import SOCKJS_CLIENT_FILE, SOCKJS_CLIENT_PATH


async def test_iframe_page_loads_sockjs_client_from_the_node(node):
    status, page = await node.get("/play/iframe.html")
    assert status == 200
    assert f'src="{SOCKJS_CLIENT_PATH}"' in page
    assert "cdn" not in page.lower()
    status, body = await node.get(SOCKJS_CLIENT_PATH)
    assert status == 200
    assert body.encode() == SOCKJS_CLIENT_FILE.read_bytes()
    assert "SockJS" in body
