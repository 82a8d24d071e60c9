"""Old home of `RoutedChatModel` (now `langgraph_hera.routing.routed`).

Kept so ``from langgraph_hera.models.routed import RoutedChatModel`` still works, resolved
lazily: `models` sits below `routing` in the layers and must not import it.
"""

from langgraph_hera._compat import moved

__getattr__ = moved(__name__, {"RoutedChatModel": "langgraph_hera.routing.routed"})
