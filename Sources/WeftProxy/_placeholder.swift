// The node proxy; see ProxyConfiguration.
