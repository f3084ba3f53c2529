using System.Runtime.CompilerServices;

namespace Irr.Tests;

/// <summary>
/// No test talks to the real Hugging Face Hub: before any test runs, <c>HF_HUB_OFFLINE=1</c> (the in-process CLI and the
/// irr processes tests start read only the cache) and <c>HF_ENDPOINT</c> points at a closed port of 127.0.0.1 (so a
/// client that is told to go online without a fake Hub is refused at once). Tests that download give their own
/// <see cref="IO.HubClient"/> (<see cref="IO.HubClient.Override"/>) or environment, pointed at a fake Hub.
/// </summary>
internal static class NoRealHub
{
    /// <summary>The endpoint every test sees unless it gives its own: the discard port, where nothing listens.</summary>
    public const string ClosedEndpoint = "http://127.0.0.1:9";

    [ModuleInitializer]
    internal static void Initialize()
    {
        Environment.SetEnvironmentVariable("HF_HUB_OFFLINE", "1");
        Environment.SetEnvironmentVariable("HF_ENDPOINT", ClosedEndpoint);
        Environment.SetEnvironmentVariable("HF_TOKEN", null);
    }
}
