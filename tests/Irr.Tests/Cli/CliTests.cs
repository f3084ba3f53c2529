using Irr;

namespace Irr.Tests.Cli;

public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => CliRunner.Run(args);

    [Fact]
    public void VersionPrintsTheBareVersion()
    {
        var (code, output, _) = Run("--version");
        Assert.Equal(0, code);
        Assert.Equal("0.1.0", output.Trim());
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    public void HelpDescribesTheTool(string flag)
    {
        var (code, output, _) = Run(flag);
        Assert.Equal(0, code);
        Assert.Contains("Identify, Remove, Recalibrate", output);
        Assert.Contains("--version", output);
    }

    [Fact]
    public void NoArgumentsShowsHelp()
    {
        var (code, output, _) = Run();
        Assert.Equal(0, code);
        Assert.Contains("Usage:", output);
    }

    [Fact]
    public void UnknownCommandFailsWithoutAStackTrace()
    {
        var (code, _, error) = Run("frobnicate");
        Assert.NotEqual(0, code);
        Assert.Contains("frobnicate", error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public void AWrongCommandLineIsOneErrorLineInIrrsWordsWithWhereTheHelpIs()
    {
        var (code, output, error) = Run("fisher", "--bogus", "--data", "d.jsonl", "-o", "f.safetensors");
        Assert.Equal(1, code);
        Assert.Equal("", output);
        Assert.Equal("error: fisher: unknown option '--bogus'; irr fisher --help lists the options\n", error);
        (code, _, error) = Run("realign", "--sparsty", "0.5");
        Assert.Equal(1, code);
        Assert.Equal("error: realign: unknown option '--sparsty' (did you mean --sparsity?); irr realign --help lists the options\n", error);
        Assert.Equal(0, Run("fisher", "--help").Code); // help is still help
    }
}

public class CliErrorTests
{
    private static (int Code, string Out, string Err) RunWith(Exception toThrow)
    {
        var root = new System.CommandLine.Command("irr");
        var fail = new System.CommandLine.Command("fail");
        fail.SetAction((System.CommandLine.ParseResult _) => (int)ThrowIt(toThrow));
        root.Add(fail);
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Irr.Cli.Program.Run(root, ["fail"], output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static object ThrowIt(Exception e) => throw e;

    [Fact]
    public void InputProblemsExitWithTwoAndOneLine()
    {
        var (code, _, error) = RunWith(new IrrException("model.safetensors: header is truncated"));
        Assert.Equal(2, code);
        Assert.Equal("error: model.safetensors: header is truncated", error.TrimEnd());
    }

    [Fact]
    public void MissingFilesExitWithTwo()
    {
        var (code, _, error) = RunWith(new FileNotFoundException("Could not find file '/nowhere/config.json'."));
        Assert.Equal(2, code);
        Assert.Contains("/nowhere/config.json", error);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public void BugsAreReportedWithoutAStackTrace()
    {
        var (code, _, error) = RunWith(new InvalidOperationException("boom"));
        Assert.Equal(70, code);
        Assert.Contains("internal error: InvalidOperationException: boom", error);
        Assert.DoesNotContain("   at ", error);
    }
}
