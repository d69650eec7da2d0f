import Policy

extension GatewayState {
    /// The `content:` rules (an empty list checks nothing).
    var contentRules: ContentRules { ContentRules(configuration.content) }
}
