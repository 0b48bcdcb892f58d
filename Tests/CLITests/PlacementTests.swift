import XCTest
@testable import LockstepCLI

/// `lockstep run` finds its place from flags, torchrun, Slurm or a Kubernetes Indexed Job.
final class PlacementTests: XCTestCase {
    func testTorchrunVariables() throws {
        let p = try Placement.resolve(rank: nil, worldSize: nil, localRank: nil, coordinator: nil,
                                      environment: ["RANK": "1", "WORLD_SIZE": "3", "LOCAL_RANK": "0", "MASTER_ADDR": "n2", "MASTER_PORT": "6000"])
        XCTAssertEqual(p, Placement(rank: 1, worldSize: 3, localRank: 0, coordinatorHost: "n2", coordinatorPort: 6000, source: "torchrun"))
    }

    func testSlurmVariablesPickTheFirstNodeAndAPortFromTheJob() throws {
        let p = try Placement.resolve(rank: nil, worldSize: nil, localRank: nil, coordinator: nil,
                                      environment: ["SLURM_PROCID": "2", "SLURM_NTASKS": "3", "SLURM_LOCALID": "0",
                                                    "SLURM_JOB_NODELIST": "n[2-4]", "SLURM_JOB_ID": "123"])
        XCTAssertEqual(p, Placement(rank: 2, worldSize: 3, localRank: 0, coordinatorHost: "n2", coordinatorPort: 20_123, source: "slurm"))
    }

    func testKubernetesIndexedJob() throws {
        let p = try Placement.resolve(rank: nil, worldSize: nil, localRank: nil, coordinator: nil,
                                      environment: ["JOB_COMPLETION_INDEX": "0", "WORLD_SIZE": "2",
                                                    "MASTER_ADDR": "lockstep-0.lockstep", "MASTER_PORT": "5555"])
        XCTAssertEqual(p.rank, 0)
        XCTAssertEqual(p.worldSize, 2)
        XCTAssertEqual(p.coordinatorHost, "lockstep-0.lockstep")
        XCTAssertEqual(p.source, "kubernetes")
    }

    func testFlagsWinOverTheEnvironment() throws {
        let p = try Placement.resolve(rank: 0, worldSize: 2, localRank: nil, coordinator: "tcp://10.0.0.5:7000",
                                      environment: ["RANK": "1", "WORLD_SIZE": "3", "MASTER_ADDR": "n2"])
        XCTAssertEqual(p.rank, 0)
        XCTAssertEqual(p.worldSize, 2)
        XCTAssertEqual(p.coordinatorHost, "10.0.0.5")
        XCTAssertEqual(p.coordinatorPort, 7000)
    }

    func testMissingOrBadValuesSayWhatToSet() {
        XCTAssertThrowsError(try Placement.resolve(rank: nil, worldSize: nil, localRank: nil, coordinator: nil, environment: [:])) {
            XCTAssertTrue("\($0)".contains("--rank"), "\($0)")
        }
        XCTAssertThrowsError(try Placement.resolve(rank: nil, worldSize: nil, localRank: nil, coordinator: nil,
                                                   environment: ["RANK": "x", "WORLD_SIZE": "2"])) {
            XCTAssertTrue("\($0)".contains("RANK=x"), "\($0)")
        }
        XCTAssertThrowsError(try Placement.resolve(rank: 3, worldSize: 2, localRank: nil, coordinator: "h:1", environment: [:]))
    }

    func testSlurmNodeLists() throws {
        XCTAssertEqual(try Placement.firstHost(of: "n[2-4]"), "n2")
        XCTAssertEqual(try Placement.firstHost(of: "node[07,09-11],gpu1"), "node07")
        XCTAssertEqual(try Placement.firstHost(of: "a,b"), "a")
        XCTAssertEqual(try Placement.firstHost(of: "single"), "single")
        XCTAssertThrowsError(try Placement.firstHost(of: ""))
    }
}
