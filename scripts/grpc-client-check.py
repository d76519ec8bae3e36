#!/usr/bin/env python3
"""Bazaar's internal gRPC ports through a real third-party client (grpcio).

Usage: grpc-client-check.py HOST:PORT SERVICE [HOST:PORT SERVICE ...]

For each port: grpc.health.v1 answers SERVING for "" and the service;
server reflection (grpcio-reflection's client) lists the service and only
it among Bazaar's, and resolves its methods; calling the first method
without a token is UNAUTHENTICATED. Prints "all gRPC client checks passed".
"""

import sys

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)


def check(target: str, name: str) -> None:
    channel = grpc.insecure_channel(target)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ["", name]:
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, (target, service, answer)
    database = ProtoReflectionDescriptorDatabase(channel)
    services = list(database.get_services())
    assert name in services, (target, services)
    others = [s for s in services if s.startswith("bazaar.") and s != name]
    assert not others, f"{target} advertises services it does not serve: {others}"
    descriptor = DescriptorPool(database).FindServiceByName(name)
    methods = [m.name for m in descriptor.methods]
    assert methods, (target, name)
    method = descriptor.methods[0]
    request = message_factory.GetMessageClass(method.input_type)
    response = message_factory.GetMessageClass(method.output_type)
    call = channel.unary_unary(
        f"/{name}/{method.name}",
        request_serializer=request.SerializeToString,
        response_deserializer=response.FromString,
    )
    try:
        call(request(), timeout=10)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, (target, error.code())
    else:
        raise AssertionError(f"{target} {name}/{method.name} answered without a token")
    print(f"{target} {name}: SERVING, reflection {methods}, no token -> UNAUTHENTICATED")


def main(argv: list) -> int:
    pairs = argv[1:]
    if not pairs or len(pairs) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    for target, name in zip(pairs[::2], pairs[1::2]):
        check(target, name)
    print("all gRPC client checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
