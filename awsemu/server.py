"""The emulator's HTTP server: each request to its service and operation, knobs applied, every call logged.

One port serves every emulated service. S3 is told apart by its signature (path-style `/bucket/key`), the
Personalize control plane by `X-Amz-Target`, STS by its `Action=` form; the rest by path. Besides the AWS
operations there is a side door under `/_emulator/` (knobs, reset, request log, Personalize data, STS roles,
guardrails, the messages SES took) so a separately started emulator process can be driven over HTTP.
"""

import json
import logging
import threading
import time
import uuid
from dataclasses import asdict

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from awsemu import bedrock, bedrock_batch, eventstream, personalize, personalize_control, s3, ses, sts
from awsemu.bedrock import BedrockRuntime
from awsemu.bedrock_batch import BatchJobs
from awsemu.knobs import Knobs
from awsemu.personalize import PersonalizeStore
from awsemu.personalize_control import PersonalizeControl
from awsemu.requestlog import RequestLog, RequestRecord
from awsemu.s3 import S3Store
from awsemu.ses import SesStore
from awsemu.sts import StsStore
from awsemu.wire import JSON11, AwsError, caller_of, error_response, json_response, xml_response

logger = logging.getLogger(__name__)

ROUTES = Map([
    Rule("/model/<path:model_id>/converse", methods=["POST"], endpoint="Converse"),
    Rule("/model/<path:model_id>/converse-stream", methods=["POST"], endpoint="ConverseStream"),
    Rule("/model/<path:model_id>/invoke", methods=["POST"], endpoint="InvokeModel"),
    Rule("/guardrail/<path:guardrail_id>/version/<version>/apply", methods=["POST"], endpoint="ApplyGuardrail"),
    Rule("/model-invocation-job", methods=["POST"], endpoint="CreateModelInvocationJob"),
    Rule("/model-invocation-job/<path:job_id>", methods=["GET"], endpoint="GetModelInvocationJob"),
    Rule("/model-invocation-job/<path:job_id>/stop", methods=["POST"], endpoint="StopModelInvocationJob"),
    Rule("/recommendations", methods=["POST"], endpoint="GetRecommendations"),
    Rule("/v2/email/outbound-emails", methods=["POST"], endpoint="SendEmail"),
    Rule("/", methods=["POST"], endpoint="rpc"),  # Personalize's control plane, or STS
    Rule("/_emulator/config", methods=["GET", "POST"], endpoint="door_config"),
    Rule("/_emulator/reset", methods=["POST"], endpoint="door_reset"),
    Rule("/_emulator/requests", methods=["GET"], endpoint="door_requests"),
    Rule("/_emulator/personalize/load", methods=["POST"], endpoint="door_personalize_load"),
    Rule("/_emulator/sts/roles", methods=["POST"], endpoint="door_sts_roles"),
    Rule("/_emulator/guardrails", methods=["POST"], endpoint="door_guardrails"),
    Rule("/_emulator/ses/messages", methods=["GET"], endpoint="door_ses_messages"),
])  # fmt: skip
SERVICE = {
    "Converse": "bedrock-runtime", "ConverseStream": "bedrock-runtime", "InvokeModel": "bedrock-runtime",
    "ApplyGuardrail": "bedrock-runtime", "CreateModelInvocationJob": "bedrock",
    "GetModelInvocationJob": "bedrock", "StopModelInvocationJob": "bedrock",
    "GetRecommendations": "personalize-runtime", "SendEmail": "sesv2",
}  # fmt: skip
PROTOCOL = {"bedrock-runtime": "rest-json", "bedrock": "rest-json", "personalize-runtime": "rest-json",
            "personalize": "json", "s3": "rest-xml", "sts": "query", "sesv2": "rest-json"}  # fmt: skip
FAULTS = {"bedrock-runtime": bedrock.FAULTS, "bedrock": bedrock_batch.FAULTS, "personalize-runtime": personalize.FAULTS,
          "personalize": personalize_control.FAULTS, "s3": s3.FAULTS, "sts": sts.FAULTS, "sesv2": ses.FAULTS}  # fmt: skip
MODEL_CALLS = ("Converse", "ConverseStream", "InvokeModel", "GetRecommendations")  # the global knobs apply


class QuietRequestHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass  # tests make many calls; the RequestLog keeps what they need


class Emulator:
    """Bedrock (runtime and batch), Personalize (runtime and control plane), S3, STS and SES v2 on one local HTTP port,
    for boto3's `endpoint_url` or the `AWS_ENDPOINT_URL_*` variables."""

    def __init__(self, *, seed: int = 0, **knobs):
        self.knobs = Knobs(seed=seed, **knobs)
        self.requests = RequestLog()
        self.s3 = S3Store()
        self.sts = StsStore()
        self.bedrock = BedrockRuntime(self.knobs)
        self.guardrails = self.bedrock.guardrails
        self.batch = BatchJobs(self.bedrock, self.s3, self.knobs)
        self.personalize_control = PersonalizeControl(self.s3, self.knobs)
        self.personalize = PersonalizeStore(self.personalize_control)
        self.ses = SesStore()
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
        """Set knobs globally, or for one target (model id, Personalize ARN or operation name) when given."""
        self.knobs.configure(model_id, **knobs)

    def reset(self) -> None:
        """Knobs back to their construction values, an empty request log, and no data in any service."""
        self.knobs.reset()
        self.requests.clear()
        for store in (
            self.s3,
            self.sts,
            self.bedrock,
            self.batch,
            self.personalize_control,
            self.personalize,
            self.ses,
        ):
            store.clear()

    def __enter__(self) -> "Emulator":
        if self._server is None:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def wsgi_app(self, environ, start_response):
        request = Request(environ)
        try:
            response = self._respond(request)
        except ValueError as exc:  # a side-door request with bad input
            response = json_response({"message": str(exc)}, 400)
        except Exception:
            logger.exception("awsemu failed on %s %s", request.method, request.path)
            response = error_response(AwsError("InternalFailure", 500, "The emulator failed; see its log."))
        return response(environ, start_response)

    def _respond(self, request: Request) -> Response:
        caller = caller_of(request)
        if caller.service == "s3":
            operation, bucket, key = s3.operation_of(request)
            return self._operation(operation, "s3", {"bucket": bucket, "key": key}, request, caller)
        try:
            endpoint, args = ROUTES.bind_to_environ(request.environ).match()
        except HTTPException:
            return self._unknown_operation(request, "rest-json")
        if endpoint.startswith("door_"):
            return getattr(self, f"_{endpoint}")(request)
        if endpoint == "rpc":
            target = request.headers.get("X-Amz-Target", "")
            if target.startswith("AmazonPersonalize."):
                return self._operation(target.split(".", 1)[1], "personalize", {}, request, caller)
            action, form = self.sts.operation_of(request.get_data())
            return self._operation(action, "sts", form, request, caller)
        return self._operation(endpoint, SERVICE[endpoint], args, request, caller)

    def _operation(self, operation: str, service: str, args: dict, request: Request, caller) -> Response:
        if not operation:
            return self._unknown_operation(request, PROTOCOL[service])
        started = time.monotonic()
        target = _target(operation, service, args, request)
        try:
            self.sts.check(caller)
            self._apply_knobs(target, FAULTS[service], model_call=operation in MODEL_CALLS)
            response = self._answer(operation, service, args, request, caller, started)
        except AwsError as error:
            response = error_response(error, PROTOCOL[service], request.method)
        except ValueError as exc:  # a parameter of the wrong type that the service's own checks missed
            response = error_response(AwsError("ValidationException", 400, str(exc)), PROTOCOL[service], request.method)
        self.requests.append(RequestRecord(operation, target, response.status_code, caller.access_key, caller.region))
        return response

    def _answer(self, operation: str, service: str, args: dict, request: Request, caller, started) -> Response:
        body, region, account = request.get_data(), caller.region, self.sts.account_of(caller)
        where = {"region": region, "account": account}
        match operation:
            case "Converse":
                return json_response(self.bedrock.converse(args["model_id"], body, started, **where))
            case "ConverseStream":
                frames = self.bedrock.converse_stream(args["model_id"], body, started, **where)
                return Response(frames, status=200, content_type=eventstream.CONTENT_TYPE)
            case "InvokeModel":
                reply, headers = self.bedrock.invoke_model(args["model_id"], body, request.headers, started, **where)
                return Response(json.dumps(reply), status=200, headers=headers, content_type="application/json")
            case "ApplyGuardrail":
                return json_response(self.bedrock.apply_guardrail(args["guardrail_id"], args["version"], body))
            case "CreateModelInvocationJob":
                return json_response(self.batch.create(body, region, account))
            case "GetModelInvocationJob":
                return json_response(self.batch.get(args["job_id"], region, account))
            case "StopModelInvocationJob":
                self.batch.stop(args["job_id"], region, account)
                return Response(status=200, headers={"x-amzn-RequestId": str(uuid.uuid4())})  # and no body, as AWS
            case "GetRecommendations":
                return json_response(self.personalize.get_recommendations(body, region, account))
            case "SendEmail":
                return json_response(self.ses.send_email(body, region, account))
        if service == "personalize":
            return json_response(self.personalize_control.handle(operation, body, region, account), 200, JSON11)
        if service == "sts":
            return self._sts(operation, args, caller)
        return self._s3(operation, args["bucket"], args["key"], request, region)

    def _sts(self, operation: str, form: dict, caller) -> Response:
        if operation == "AssumeRole":
            return xml_response(self.sts.assume_role(form, caller))
        if operation == "GetCallerIdentity":
            return xml_response(self.sts.get_caller_identity(caller))
        raise AwsError("InvalidAction", 400, f"The emulator has no sts:{operation}.")

    def _s3(self, operation: str, bucket: str, key: str, request: Request, region: str) -> Response:
        match operation:
            case "CreateBucket":
                return self.s3.create_bucket(bucket, region)
            case "HeadBucket":
                return self.s3.head_bucket(bucket)
            case "ListObjectsV2":
                return self.s3.list_objects_v2(bucket, request)
            case "PutObject":
                return self.s3.put_object(bucket, key, request)
            case "GetObject" | "HeadObject":
                return self.s3.get_object(bucket, key, request)
        return self.s3.delete_object(bucket, key)

    def _apply_knobs(self, target: str, faults: dict, model_call: bool) -> None:
        decision = self.knobs.decide(target, use_default=model_call)
        if decision.delay_s:
            time.sleep(decision.delay_s)
        if decision.fault:
            raise AwsError(*faults[decision.fault])

    def _unknown_operation(self, request: Request, protocol: str) -> Response:
        self.requests.append(RequestRecord("Unknown", "", 404))
        error = AwsError("UnknownOperationException", 404, f"No operation at {request.method} {request.path}")
        return error_response(error, protocol, request.method)

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

    def _door_ses_messages(self, request: Request) -> Response:
        return json_response({"messages": [sent.as_dict() for sent in self.ses.messages()]})

    def _door_personalize_load(self, request: Request) -> Response:
        data = _json_object(request)
        items, interactions = data.get("items") or [], data.get("interactions") or []
        self.personalize.load(data.get("arn"), items=items, interactions=interactions)
        return json_response({"arn": data["arn"], "items": len(items), "interactions": len(interactions)})

    def _door_sts_roles(self, request: Request) -> Response:
        data = _json_object(request)
        self.sts.add_role(data.get("role_arn"), data.get("external_id"))
        return json_response({"role_arn": data["role_arn"]})

    def _door_guardrails(self, request: Request) -> Response:
        data = _json_object(request)
        if not data.get("guardrail_id"):
            raise ValueError("guardrail_id is required")
        options = {key: data[key] for key in ("words", "emails", "version") if key in data}
        self.guardrails.define(data["guardrail_id"], **options)
        return json_response({"guardrail_id": data["guardrail_id"]})


def _target(operation: str, service: str, args: dict, request: Request) -> str:
    """What knobs and the request log key a call by: the model or recommender it reaches, else its operation."""
    if "model_id" in args:
        return args["model_id"]
    if service == "personalize-runtime":
        return personalize.peek_target(request.get_data())
    return operation


def _json_object(request: Request) -> dict:
    try:
        data = json.loads(request.get_data() or b"{}")
    except ValueError:
        raise ValueError("the body must be JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data
