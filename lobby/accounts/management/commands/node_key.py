"""`manage.py node_key <node id>`: the request key of one game node (its NODE_KEY).

Derived from this lobby's master NODE_SECRET (engine.auth.derive_node_key): give each node
only its own key, so that a node cannot sign heartbeats or results as another.
"""

from django.conf import settings
from django.core.management.base import BaseCommand

from engine.auth import derive_node_key


class Command(BaseCommand):
    help = "Print NODE_KEY for a game node, derived from NODE_SECRET and the node id."

    def add_arguments(self, parser) -> None:
        parser.add_argument("node_id", nargs="+")

    def handle(self, *args, **options) -> None:
        for node_id in options["node_id"]:
            key = derive_node_key(settings.NODE_SECRET, node_id)
            self.stdout.write(key if len(options["node_id"]) == 1 else f"{node_id} {key}")
