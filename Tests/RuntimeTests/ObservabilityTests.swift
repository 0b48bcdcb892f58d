import Foundation
import XCTest

/// `--tensorboard DIR`, in one process and with `--workers 2`, read back by the
/// `tensorboard` package's own event reader; `--metrics-port` scraped over HTTP and
/// read by `prometheus_client`'s parser (both installed into .build/test-venv;
/// skipped when they cannot be installed).
final class ObservabilityTests: XCTestCase {
    func testTensorBoardReadsTheScalars() throws {
        let python = try TestConfigs.python(with: ["tensorboard": "tensorboard", "prometheus_client": "prometheus-client"])
        let config = try TestConfigs.write(epochs: 2)
        for extra in [[], ["--workers", "2"]] {
            let dir = config + ".tb\(extra.count)", metrics = config + ".m\(extra.count).jsonl"
            let run = try ChildProcess("lockstep", ["train", "--config", config, "--tensorboard", dir, "--metrics", metrics] + extra)
            XCTAssertEqual(run.wait(seconds: 120), 0, run.text)
            let read = try ChildProcess(path: python, ["-c", """
                import json, sys
                from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
                ea = EventAccumulator(sys.argv[1]); ea.Reload()
                print(json.dumps({t: [[e.step, e.value] for e in ea.Scalars(t)] for t in ea.Tags()["scalars"]}))
                """, dir], name: "tensorboard reader")
            XCTAssertEqual(read.wait(seconds: 120), 0, read.text)
            let line = try XCTUnwrap(read.text.split(separator: "\n").last { $0.hasPrefix("{") }, read.text)
            let scalars = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: [[Double]]])
            var tags = ["train/loss", "train/learning_rate", "epoch/loss", "epoch/test_accuracy", "epoch/samples_per_second"]
            if !extra.isEmpty { tags += ["rank0/step_ms", "rank1/compute_ms", "rank1/wait_ms", "rank0/communication_ms"] }
            for tag in tags {
                XCTAssertNotNil(scalars[tag], "\(extra): no \(tag) in \(scalars.keys.sorted())")
            }
            let accuracy = try XCTUnwrap(scalars["epoch/test_accuracy"])
            XCTAssertEqual(accuracy.count, 2, "\(extra): one test accuracy per epoch")
            let final = try XCTUnwrap(try TestConfigs.metrics(metrics).last { $0["event"] as? String == "final" })
            XCTAssertEqual(accuracy.last?[1] ?? -1, try XCTUnwrap(final["test_accuracy"] as? Double), accuracy: 1e-6)
            XCTAssertEqual(scalars["train/learning_rate"]?.first?[1] ?? 0, 0.05, accuracy: 1e-7)
        }
    }

    func testPrometheusParsesAScrapeOfARunningJob() throws {
        let python = try TestConfigs.python(with: ["tensorboard": "tensorboard", "prometheus_client": "prometheus-client"])
        let config = try TestConfigs.write(trainSamples: 16384, epochs: 40)
        let run = try ChildProcess("lockstep", ["train", "--config", config, "--workers", "2", "--metrics-port", "0"])
        defer { run.terminate() }
        XCTAssertTrue(run.waitForOutput("Prometheus metrics on http://0.0.0.0:", seconds: 30), run.text)
        let marker = try XCTUnwrap(run.text.range(of: "http://0.0.0.0:"))
        let port = try XCTUnwrap(Int(run.text[marker.upperBound...].prefix { $0.isNumber }), run.text)
        let scrape = try ChildProcess(path: python, ["-c", """
            import json, time, urllib.request
            from prometheus_client.parser import text_string_to_metric_families
            for _ in range(300):
                text = urllib.request.urlopen("http://127.0.0.1:\(port)/metrics", timeout=5).read().decode()
                values = {s.name + ("{" + ",".join('%s="%s"' % kv for kv in sorted(s.labels.items())) + "}" if s.labels else ""): s.value
                          for f in text_string_to_metric_families(text) for s in f.samples}
                if values.get("lockstep_epoch", 0) >= 1 and values.get("lockstep_step", 0) > 0 and 'lockstep_rank_compute_seconds{rank="1"}' in values: break
                time.sleep(0.1)
            print(json.dumps(values))
            """], name: "scrape")
        XCTAssertEqual(scrape.wait(seconds: 60), 0, scrape.text)
        let line = try XCTUnwrap(scrape.text.split(separator: "\n").last { $0.hasPrefix("{") }, scrape.text)
        let values = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Double])
        XCTAssertEqual(values["lockstep_workers"], 2)
        XCTAssertGreaterThanOrEqual(values["lockstep_epoch"] ?? 0, 1, "\(values)")
        XCTAssertGreaterThan(values["lockstep_step"] ?? 0, 0, "\(values)")
        for name in ["lockstep_loss", "lockstep_learning_rate", "lockstep_test_accuracy", "lockstep_samples_per_second",
                     "lockstep_rank_step_seconds{rank=\"0\"}", "lockstep_rank_compute_seconds{rank=\"1\"}",
                     "lockstep_rank_wait_seconds{rank=\"1\"}", "lockstep_rank_communication_seconds{rank=\"0\"}"] {
            XCTAssertNotNil(values[name], "\(name) missing from \(values.keys.sorted())")
        }
    }
}
