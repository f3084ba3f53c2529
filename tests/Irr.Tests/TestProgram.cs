namespace Irr.Tests;

/// <summary>
/// The test assembly's entry point (xunit never calls it): <c>dotnet Irr.Tests.dll fake-engine …</c> runs the fake
/// OpenAI-compatible server as a process of its own, for the tests of <c>--engine-serve</c>, which starts a server command.
/// </summary>
public static class TestProgram
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "fake-engine") return Eval.FakeEngineProcess.Run(args[1..]);
        Console.Error.WriteLine("usage: Irr.Tests.dll fake-engine --port N [--exit-before-serving CODE]");
        return 2;
    }
}
