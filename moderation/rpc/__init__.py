"""The gRPC transport: conversion, servicer, interceptors, server lifecycle.

Only this package (and the composition root) sees ``moderation.v1``; the core never sees gRPC.
"""
