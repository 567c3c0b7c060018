"""Tasks of the order example in docs/running-flows.md."""

from selflow import FatalTaskError, SelflowTask


class LoadOrder(SelflowTask):
    def run(self, node_args):
        return {"order": node_args["order"], "total": node_args.get("total", 0), "card": node_args.get("card")}


class ChargeCard(SelflowTask):
    def run(self, node_args):
        order = self.parent_task_result("LoadOrder")
        if order["card"] == "expired":
            raise FatalTaskError("card expired")  # no retries: fail at once
        return {"charged": order["total"]}


def ship(node_args):
    """A plain function works as a task too."""
    return {"shipped": node_args["order"]}


class ReportDecline(SelflowTask):
    def run(self, node_args):
        error = self.parent_task_exception("ChargeCard")  # fallbacks see which parent failed
        return {"order": node_args["order"], "declined": error["message"]}
