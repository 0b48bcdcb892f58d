import Foundation

/// Runs `body(rank)` on its own thread for every rank and waits for all.
enum RankThreads {
    static func run(_ world: Int, _ body: @escaping (Int) -> Void) {
        let group = DispatchGroup()
        for r in 0..<world {
            group.enter()
            let t = Thread { body(r); group.leave() }
            t.stackSize = 8 << 20
            t.start()
        }
        group.wait()
    }
}
