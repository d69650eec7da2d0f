import Yams

extension ConfigurationLoader.Reader {
    /// `retention.push_times` (optional): the file manifest pushes are recorded in, resolved;
    /// `nil` when not recorded.
    mutating func readRetention(_ node: Node?) -> String? {
        var pushTimes: String?
        if let section = mapping(node, "retention", allowed: ["push_times"]),
            let text = string(section["push_times"], "retention.push_times")
        {
            pushTimes = fileToWrite(text, "retention.push_times")
        }
        return pushTimes
    }
}
