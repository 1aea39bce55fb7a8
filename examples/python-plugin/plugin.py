"""zoo-plugin-pyecho: a zoo model plugin written in Python.

It speaks zoo's plugin protocol (sdk/proto/zoo_plugin_v1.proto, documented
in docs/plugins.md) with nothing but Debian's python3-grpcio and
python3-protobuf: zoo_plugin_v1_pb2.py is generated from the same .proto by
`make proto-python` (protoc --python_out), and the gRPC service is
registered by hand below, so grpc_tools is not needed.

Its one model, PyEcho, classifies the samples "sample0", "sample1", ... by
the parity of their index: enough to be listed, tested and inferred by zoo.
"""

import json
import os
import signal
import sys
import time
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import zoo_plugin_v1_pb2 as pb  # noqa: E402

# go-plugin's handshake: zoo checks the cookie's value and the app protocol
# version (sdk.Handshake, sdk.ProtocolVersion).
MAGIC_COOKIE_KEY = "ZOO_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "7f1c2a9e-zoo-model-plugin"
CORE_PROTOCOL_VERSION = 1  # go-plugin's own
APP_PROTOCOL_VERSION = 1   # sdk.ProtocolVersion
PROTOCOL_MINOR = 1         # sdk.ProtocolMinor this plugin was written for
MAX_MESSAGE_BYTES = 256 << 20  # sdk.MaxMessageBytes

LABELS = ["even", "odd"]


def log(level, msg):
    """Logs go to stderr as hclog JSON; zoo shows them under its --log-level."""
    sys.stderr.write(json.dumps({"@level": level, "@message": msg, "@module": "pyecho"}) + "\n")
    sys.stderr.flush()


def model_info():
    return pb.ModelInfo(
        name="PyEcho",
        version="0.1.0",
        description="a model served by a plugin written in Python",
        tasks=["test", "infer"],
        config_keys=[
            pb.ConfigKey(section="INFER", name="samples", type="int", default_json="3",
                         help="how many samples to predict"),
            pb.ConfigKey(section="TEST", name="samples", type="int", default_json="4"),
        ],
        labels=LABELS,
        default_config_json=json.dumps({"INFER": {"samples": 2}}).encode(),
    )


class Plugin:
    """The zoo.plugin.v1.Plugin service."""

    def __init__(self):
        self.sessions = {}
        self.next = 0

    def Describe(self, req, ctx):
        return pb.DescribeResponse(protocol_minor=PROTOCOL_MINOR, models=[model_info()])

    def Open(self, req, ctx):
        if req.model != "PyEcho":
            ctx.abort(grpc.StatusCode.NOT_FOUND, "this plugin serves PyEcho, not %r" % req.model)
        cfg = json.loads(req.config_json or b"{}")
        section = req.mode.upper()
        samples = int(cfg.get(section, {}).get("samples", 3))
        if samples < 1:
            # A user's mistake: INVALID_ARGUMENT with one line naming the key.
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "%s.samples %d: must be at least 1" % (section, samples))
        self.next += 1
        sid = str(self.next)
        self.sessions[sid] = samples
        return pb.OpenResponse(session=sid, notes=["PyEcho in Python %d.%d, %d samples" % (
            sys.version_info[0], sys.version_info[1], samples)])

    def Run(self, req, ctx):
        samples = self.sessions.get(req.session)
        if samples is None:
            ctx.abort(grpc.StatusCode.NOT_FOUND, "no session %r" % req.session)
        yield pb.Event(start=pb.Start(steps=samples, samples=samples))
        for i in range(samples):
            if not ctx.is_active():  # the host cancelled: stop between steps
                return
            scores = [0.8, 0.2] if i % 2 == 0 else [0.2, 0.8]
            if req.phase == "infer":
                yield pb.Event(prediction=pb.Prediction(
                    id="sample%d" % i, label=-1, scores=pb.Tensor(shape=[2], data=scores)))
            elif req.phase == "test":
                yield pb.Event(step=pb.Step(iter=i, samples=1, metrics={"loss": 0.2, "top1": 1.0, "top5": 1.0}))
            else:
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "PyEcho cannot run phase %r" % req.phase)

    def Infer(self, req, ctx):
        ctx.abort(grpc.StatusCode.UNIMPLEMENTED, "PyEcho takes no tensors from the host")

    def Save(self, req, ctx):
        with open(os.path.join(req.dir, "pyecho.json"), "w") as f:
            json.dump({"samples": self.sessions.get(req.session, 0)}, f)
        return pb.SaveResponse()

    def Load(self, req, ctx):
        return pb.LoadResponse(loaded=0, ignored=len(os.listdir(req.dir)))

    def Close(self, req, ctx):
        self.sessions.pop(req.session, None)
        return pb.CloseResponse()


def plugin_handler(impl):
    """Registers the service by hand, as grpc_tools' _pb2_grpc would."""
    def unary(fn, req_type, resp_type):
        return grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=req_type.FromString, response_serializer=resp_type.SerializeToString)

    return grpc.method_handlers_generic_handler("zoo.plugin.v1.Plugin", {
        "Describe": unary(impl.Describe, pb.DescribeRequest, pb.DescribeResponse),
        "Open": unary(impl.Open, pb.OpenRequest, pb.OpenResponse),
        "Run": grpc.unary_stream_rpc_method_handler(
            impl.Run, request_deserializer=pb.RunRequest.FromString, response_serializer=pb.Event.SerializeToString),
        "Infer": unary(impl.Infer, pb.InferRequest, pb.InferResponse),
        "Save": unary(impl.Save, pb.SaveRequest, pb.SaveResponse),
        "Load": unary(impl.Load, pb.LoadRequest, pb.LoadResponse),
        "Close": unary(impl.Close, pb.CloseRequest, pb.CloseResponse),
    })


def go_plugin_handlers(server, stop):
    """The services go-plugin's host side expects beside zoo's.

    grpc.health.v1.Health/Check for the service "plugin" must answer SERVING;
    plugin.GRPCController/Shutdown lets the host stop the plugin gracefully.
    Both messages are tiny, so they are encoded by hand: HealthCheckResponse
    {status: SERVING} is field 1 = 1 (bytes 08 01) and Empty is no bytes.
    """
    raw = dict(request_deserializer=None, response_serializer=None)
    health = grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"\x08\x01", **raw),
    })

    def shutdown(req, ctx):
        stop()
        return b""

    controller = grpc.method_handlers_generic_handler("plugin.GRPCController", {
        "Shutdown": grpc.unary_unary_rpc_method_handler(shutdown, **raw),
    })
    return [health, controller]


def main():
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write("This binary is a plugin. These are not meant to be executed directly.\n"
                         "Please execute the program that consumes these plugins, which will\n"
                         "load any plugins automatically\n")
        sys.exit(1)
    # The host owns the signals: a Ctrl-C, `timeout`'s or a scheduler's
    # SIGTERM/SIGHUP may reach every process of the job, and the host then
    # saves through this plugin before closing it (docs/plugins.md,
    # "Signals and process lifetime").
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    host = os.getppid()
    opts = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Without this gRPC binds with SO_REUSEPORT, and a port another
            # process listens on looks free.
            ("grpc.so_reuseport", 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=opts)
    done = []
    server.add_generic_rpc_handlers([plugin_handler(Plugin())] +
                                    go_plugin_handlers(server, lambda: done.append(True)))
    # Listen where the host allows: PLUGIN_MIN_PORT..PLUGIN_MAX_PORT if set.
    lo, hi = int(os.environ.get("PLUGIN_MIN_PORT", "0")), int(os.environ.get("PLUGIN_MAX_PORT", "0"))
    port = 0
    for p in (range(lo, hi + 1) if lo and hi else [0]):
        try:
            port = server.add_insecure_port("127.0.0.1:%d" % p)
        except RuntimeError:
            port = 0
        if port:
            break
    if not port:
        log("error", "no free port in PLUGIN_MIN_PORT..PLUGIN_MAX_PORT")
        sys.exit(1)
    server.start()
    # The handshake: the only line a plugin ever writes to stdout.
    print("%d|%d|tcp|127.0.0.1:%d|grpc" % (CORE_PROTOCOL_VERSION, APP_PROTOCOL_VERSION, port), flush=True)
    log("debug", "serving on port %d" % port)
    # Never outlive the host: when it dies this process is re-parented.
    while not done and os.getppid() == host:
        time.sleep(0.05)
    if not done:
        log("error", "host (pid %d) is gone; exiting" % host)
    server.stop(0.5)


if __name__ == "__main__":
    main()
