"""Time to match, minutes delivered and revenue by category, from Helpline's events.

The worked analysis of docs/analysis.md: what an analyst writes with
confluent-kafka and the protobuf classes generated from proto/ (the build puts
them in build/python). It reads three events topics from the beginning to
their current end and joins them by id:

  helpline.matching.events   HelpRequested -> MatchMade | HelpRequestCancelled | HelpRequestExpired
  helpline.sessions.events   SessionCreated (category) -> SessionEnded (billed minutes)
  helpline.payments.events   SessionCaptured (amount, fee) and SessionRefunded, by session id

Run it with tools/analyze (which sets up the venv and PYTHONPATH).
"""

import argparse
import collections
import json
import os
import statistics
import sys

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition, OFFSET_BEGINNING

from helpline.matching.v1 import events_pb2 as matching
from helpline.payments.v1 import events_pb2 as payments
from helpline.sessions.v1 import events_pb2 as sessions

# Minor units per major unit; ISO 4217 exponents that are not 2.
CURRENCY_EXPONENTS = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "TND": 3}


def read_events(config, topic, envelope):
    """Every committed event of `topic` now, decoded as `envelope`, partition by partition."""
    consumer = Consumer({
        **config,
        "group.id": "helpline-events-analysis",  # never joined: partitions are assigned, nothing committed
        "enable.auto.commit": False,
        "isolation.level": "read_committed",
        "enable.partition.eof": True,
    })
    try:
        metadata = consumer.list_topics(topic, timeout=30)
        if metadata.topics[topic].error is not None:
            raise SystemExit(f"{topic}: {metadata.topics[topic].error.str()}")
        waiting = set()
        for partition in metadata.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=30)
            if high > low:
                waiting.add(partition)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in waiting])
        while waiting:
            message = consumer.poll(5.0)
            if message is None:
                continue
            if message.error():
                if message.error().code() == KafkaError._PARTITION_EOF:
                    waiting.discard(message.partition())
                    continue
                raise KafkaException(message.error())
            event = envelope()
            event.ParseFromString(message.value())
            yield event
    finally:
        consumer.close()


def seconds_between(start, end):
    return (end.ToNanoseconds() - start.ToNanoseconds()) / 1e9


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def time_to_match(events):
    requests = {}
    for event in events:
        kind = event.WhichOneof("body")
        request_id = event.meta.aggregate_id
        if kind == "help_requested":
            requests[request_id] = {"category": event.help_requested.category_id,
                                    "asked": event.meta.occurred_at, "outcome": "waiting"}
        elif request_id in requests and kind in ("match_made", "help_request_cancelled",
                                                 "help_request_expired"):
            request = requests[request_id]
            request["outcome"] = {"match_made": "matched", "help_request_cancelled": "cancelled",
                                  "help_request_expired": "expired"}[kind]
            request["waited"] = seconds_between(request["asked"], event.meta.occurred_at)

    by_category = collections.defaultdict(lambda: collections.Counter())
    waits = collections.defaultdict(list)
    for request in requests.values():
        by_category[request["category"]]["requests"] += 1
        by_category[request["category"]][request["outcome"]] += 1
        if request["outcome"] == "matched":
            waits[request["category"]].append(request["waited"])
    result = {}
    for category, counts in sorted(by_category.items()):
        row = {key: counts[key] for key in ("requests", "matched", "cancelled", "expired",
                                            "waiting")}
        if waits[category]:
            row["median_seconds"] = statistics.median(waits[category])
            row["p90_seconds"] = percentile(waits[category], 0.9)
        result[category] = row
    return result


def sessions_by_category(events):
    """Per session id: its category and sponsorship; per category: minutes delivered."""
    session_category = {}
    delivered = collections.defaultdict(collections.Counter)
    for event in events:
        kind = event.WhichOneof("body")
        session_id = event.meta.aggregate_id
        if kind == "session_created":
            created = event.session_created
            session_category[session_id] = created.category_id
            delivered[created.category_id]["sessions"] += 1
            if created.sponsor_program_id:
                delivered[created.category_id]["sponsored"] += 1
        elif kind == "session_ended" and session_id in session_category:
            row = delivered[session_category[session_id]]
            row["ended"] += 1
            row["billed_minutes"] += event.session_ended.billing.billed_minutes
            row["connected_seconds"] += event.session_ended.billing.billable.ToSeconds()
        elif kind in ("session_no_show", "session_cancelled") and session_id in session_category:
            delivered[session_category[session_id]][kind[len("session_"):]] += 1
    minutes = {category: {key: row[key] for key in ("sessions", "sponsored", "ended", "no_show",
                                                    "cancelled", "billed_minutes",
                                                    "connected_seconds")}
               for category, row in sorted(delivered.items())}
    return session_category, minutes


def revenue_by_category(events, session_category):
    """Captured minus refunded, and Helpline's commission, per category and currency."""
    revenue = collections.defaultdict(collections.Counter)
    for event in events:
        kind = event.WhichOneof("body")
        if kind == "session_captured":
            captured = event.session_captured
            category = session_category.get(captured.session_id, "(unknown session)")
            row = revenue[(category, captured.amount.currency_code)]
            row["captured_minor"] += captured.amount.amount_minor
            row["commission_minor"] += captured.fee_minor
        elif kind == "session_refunded":
            refunded = event.session_refunded
            category = session_category.get(refunded.session_id, "(unknown session)")
            row = revenue[(category, refunded.amount.currency_code)]
            row["refunded_minor"] += refunded.amount.amount_minor
            row["commission_minor"] -= sum(transfer.amount for transfer in refunded.transfers
                                           if transfer.debit_account_id == "platform:commission")
    result = collections.defaultdict(dict)
    for (category, currency), row in sorted(revenue.items()):
        net = row["captured_minor"] - row["refunded_minor"]
        result[category][currency] = {
            "captured_minor": row["captured_minor"], "refunded_minor": row["refunded_minor"],
            "net_minor": net, "commission_minor": row["commission_minor"],
            "experts_minor": net - row["commission_minor"]}
    return dict(result)


def money(amount_minor, currency):
    exponent = CURRENCY_EXPONENTS.get(currency, 2)
    if exponent == 0:
        return f"{amount_minor} {currency}"
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10 ** exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d} {currency}"


def print_report(report):
    print("Time to match (help now; service clock)")
    print(f"  {'category':<22}{'requests':>9}{'matched':>9}{'cancelled':>10}{'expired':>9}"
          f"{'waiting':>9}{'median':>10}{'p90':>10}")
    for category, row in report["time_to_match"].items():
        median = f"{row['median_seconds']:.1f} s" if "median_seconds" in row else "-"
        p90 = f"{row['p90_seconds']:.1f} s" if "p90_seconds" in row else "-"
        print(f"  {category:<22}{row['requests']:>9}{row['matched']:>9}{row['cancelled']:>10}"
              f"{row['expired']:>9}{row['waiting']:>9}{median:>10}{p90:>10}")
    print("\nMinutes delivered")
    print(f"  {'category':<22}{'sessions':>9}{'sponsored':>10}{'ended':>7}{'no-show':>9}"
          f"{'cancelled':>10}{'billed min':>11}{'connected':>11}")
    for category, row in report["minutes_delivered"].items():
        connected = f"{row['connected_seconds'] / 60:.1f} min"
        print(f"  {category:<22}{row['sessions']:>9}{row['sponsored']:>10}{row['ended']:>7}"
              f"{row['no_show']:>9}{row['cancelled']:>10}{row['billed_minutes']:>11}"
              f"{connected:>11}")
    print("\nRevenue by category (captured - refunded = net = commission + experts)")
    print(f"  {'category':<22}{'captured':>13}{'refunded':>13}{'net':>13}{'commission':>13}"
          f"{'experts':>13}")
    for category, currencies in report["revenue"].items():
        for currency, row in currencies.items():
            cells = [money(row[key], currency) for key in ("captured_minor", "refunded_minor",
                                                           "net_minor", "commission_minor",
                                                           "experts_minor")]
            print(f"  {category:<22}" + "".join(f"{cell:>13}" for cell in cells))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap-servers",
                        default=f"127.0.0.1:{os.environ.get('HL_KAFKA_PORT') or 19092}")
    parser.add_argument("--topic-prefix", default="", help="prepended to topic names (tests)")
    parser.add_argument("--property", action="append", default=[], metavar="KEY=VALUE",
                        help="a librdkafka setting, e.g. security.protocol=sasl_ssl")
    parser.add_argument("--json", action="store_true", help="the figures as one JSON object")
    args = parser.parse_args()

    config = {"bootstrap.servers": args.bootstrap_servers}
    for setting in args.property:
        key, _, value = setting.partition("=")
        config[key] = value
    if os.environ.get("HELPLINE_KAFKA_SASL_PASSWORD"):
        config["sasl.password"] = os.environ["HELPLINE_KAFKA_SASL_PASSWORD"]

    def topic(service):
        return f"{args.topic_prefix}helpline.{service}.events"

    session_category, minutes = sessions_by_category(
        read_events(config, topic("sessions"), sessions.SessionsEvent))
    report = {
        "time_to_match": time_to_match(
            read_events(config, topic("matching"), matching.MatchingEvent)),
        "minutes_delivered": minutes,
        "revenue": revenue_by_category(
            read_events(config, topic("payments"), payments.PaymentsEvent), session_category),
    }
    if args.json:
        json.dump(report, sys.stdout, indent=2, sort_keys=True)
        print()
    else:
        print_report(report)


if __name__ == "__main__":
    main()
