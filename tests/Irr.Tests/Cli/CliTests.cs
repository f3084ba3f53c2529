namespace Irr.Tests.Cli;

public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Irr.Cli.Program.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

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
}
