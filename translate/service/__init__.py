"""Translation as a service: text in, text out, for the `translate` CLI and `translate serve`.

segment.py     text -> units (lines, pysbd sentences, parts of over-long sentences) and translations back
translator.py  an engine loaded once: plan, decode (translate_ids), join; what the CLI runs
worker.py      the server's model worker: continuous, static or sequential scheduling of every client's units
app.py         create_app: assembles the FastAPI app from the routers, the state and the error handlers;
               libre.py (LibreTranslate's endpoints) and routes.py (/v1/translate, /metrics, the page in
               static/) hold the route handlers, state.py what they share (app.state), requests.py reads
               and checks request fields, dispatch.py queues work on the workers, metrics.py writes
               Prometheus text, alignment.py turns cross-attention into the heatmap's JSON
config.py      ServiceConfig and ServerConfig, the one home of the serving defaults
`translate serve` (translate/serve.py) loads checkpoints, starts the workers and runs uvicorn.
"""

from translate.service.config import ServerConfig, ServiceConfig
from translate.service.segment import Plan, plan, split_sentences
from translate.service.translator import Languages, Translator, data_languages

__all__ = [
    "Languages",
    "Plan",
    "ServerConfig",
    "ServiceConfig",
    "Translator",
    "data_languages",
    "plan",
    "split_sentences",
]
