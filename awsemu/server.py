"""The emulator's HTTP server: AWS operations to the service modules, knobs applied, every call logged.

Besides the AWS paths it has a side door under `/_emulator/` (config, reset, request log, Personalize data)
so a separately started emulator process can be driven over HTTP.
"""

import json
import logging
import threading
import time
from dataclasses import asdict

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from awsemu import bedrock, personalize
from awsemu.knobs import Knobs
from awsemu.requestlog import RequestLog, RequestRecord
from awsemu.wire import AwsError, error_response, json_response

logger = logging.getLogger(__name__)

ROUTES = Map([
    Rule("/model/<path:model_id>/converse", methods=["POST"], endpoint="Converse"),
    Rule("/recommendations", methods=["POST"], endpoint="GetRecommendations"),
    Rule("/_emulator/config", methods=["GET", "POST"], endpoint="config"),
    Rule("/_emulator/reset", methods=["POST"], endpoint="reset"),
    Rule("/_emulator/requests", methods=["GET"], endpoint="requests"),
    Rule("/_emulator/personalize/load", methods=["POST"], endpoint="personalize_load"),
])  # fmt: skip
FAULTS = {"Converse": bedrock.FAULTS, "GetRecommendations": personalize.FAULTS}


class QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass  # tests make many calls; the RequestLog keeps what they need


class Emulator:
    """Bedrock Runtime and Personalize Runtime on one local HTTP port, for boto3's `endpoint_url`."""

    def __init__(self, *, seed: int = 0, **knobs):
        self.knobs = Knobs(seed=seed, **knobs)
        self.personalize = personalize.PersonalizeStore()
        self.requests = RequestLog()
        self._server = None
        self._thread = None

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "Emulator":
        """Serve from a background thread; port 0 picks a free port (see `url`)."""
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        # Threaded, so a call sleeping out its latency never holds up the others.
        handler = QuietRequestHandler
        self._server = make_server(host, port, self.wsgi_app, threaded=True, request_handler=handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="awsemu", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self, host: str = "127.0.0.1", port: int = 8765) -> None:
        """Serve in the foreground, logging each request, until interrupted."""
        self._server = make_server(host, port, self.wsgi_app, threaded=True)
        try:
            self._server.serve_forever()
        finally:
            self._server = None

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()  # serve_forever then closes the socket
        self._thread.join()
        self._server = self._thread = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def configure(self, model_id: str | None = None, **knobs) -> None:
        """Set knobs globally, or for one model id (or Personalize ARN) when model_id is given."""
        self.knobs.configure(model_id, **knobs)

    def reset(self) -> None:
        """Knobs back to their construction values, an empty request log, no Personalize data."""
        self.knobs.reset()
        self.requests.clear()
        self.personalize.clear()

    def __enter__(self) -> "Emulator":
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def wsgi_app(self, environ, start_response):
        request = Request(environ)
        try:
            endpoint, args = ROUTES.bind_to_environ(environ).match()
        except HTTPException:
            response = self._unknown_operation(request)
        else:
            response = self._dispatch(endpoint, args, request)
        return response(environ, start_response)

    def _dispatch(self, endpoint: str, args: dict, request: Request) -> Response:
        try:
            if endpoint in FAULTS:
                return self._operation(endpoint, args.get("model_id"), request)
            return getattr(self, f"_door_{endpoint}")(request)
        except ValueError as exc:  # a side-door request with bad input
            return json_response({"message": str(exc)}, 400)
        except Exception:
            logger.exception("awsemu failed on %s %s", request.method, request.path)
            return error_response(AwsError("InternalFailure", 500, "The emulator failed; see its log."))

    def _operation(self, operation: str, model_id: str | None, request: Request) -> Response:
        started = time.monotonic()
        body = request.get_data()
        target = model_id or personalize.peek_target(body)
        try:
            self._apply_knobs(operation, target)
            if operation == "Converse":
                response = json_response(bedrock.converse(target, body, started))
            else:
                response = json_response(self.personalize.get_recommendations(body))
        except AwsError as error:
            response = error_response(error)
        self.requests.append(RequestRecord(operation, target, response.status_code))
        return response

    def _apply_knobs(self, operation: str, target: str) -> None:
        decision = self.knobs.decide(target)
        if decision.delay_s:
            time.sleep(decision.delay_s)
        if decision.fault:
            raise AwsError(*FAULTS[operation][decision.fault])

    def _unknown_operation(self, request: Request) -> Response:
        self.requests.append(RequestRecord("Unknown", "", 404))
        return error_response(AwsError("UnknownOperationException", 404, f"No operation at {request.path}"))

    def _door_config(self, request: Request) -> Response:
        if request.method == "POST":
            values = _json_object(request)
            self.configure(values.pop("model_id", None), **values)
        return json_response(self.knobs.snapshot())

    def _door_reset(self, request: Request) -> Response:
        self.reset()
        return json_response(self.knobs.snapshot())

    def _door_requests(self, request: Request) -> Response:
        return json_response({"requests": [asdict(record) for record in self.requests]})

    def _door_personalize_load(self, request: Request) -> Response:
        data = _json_object(request)
        items, interactions = data.get("items") or [], data.get("interactions") or []
        self.personalize.load(data.get("arn"), items=items, interactions=interactions)
        return json_response({"arn": data["arn"], "items": len(items), "interactions": len(interactions)})


def _json_object(request: Request) -> dict:
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError:
        raise ValueError("the body must be JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data
