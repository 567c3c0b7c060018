"""Custom condition predicates for docs/examples/custom_predicates.yml.

Each predicate is a plain function that returns a bool. ``message`` receives the stored result
of the parent task, ``node_args`` the flow arguments; every other parameter comes from the
condition's ``args`` in the YAML.
"""


def order_total_above(message, amount):
    """True when the order's lines add up to more than ``amount``."""
    try:
        return sum(line["price"] * line["quantity"] for line in message["lines"]) > amount
    except (KeyError, TypeError):
        return False


def ships_to(node_args, countries):
    """True when the flow arguments name a destination country in ``countries``."""
    return isinstance(node_args, dict) and node_args.get("country") in countries
