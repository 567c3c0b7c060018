"""Tasks of the limits example in docs/limits.md: each returns when it started."""

import time

from selflow import SelflowTask


class ListOrders(SelflowTask):
    def run(self, node_args):
        return node_args["orders"]


def each_order(results, node_args):
    """The foreach function: one charge_order sub-flow per order."""
    return results.get("ListOrders")


class ChargeCard(SelflowTask):
    def run(self, node_args):
        return {"customer": node_args["customer"], "order": node_args["order"], "started": time.time()}


class SendReceipt(SelflowTask):
    def run(self, node_args):
        return {"order": node_args["order"], "started": time.time()}
