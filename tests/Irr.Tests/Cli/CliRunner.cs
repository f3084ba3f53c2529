namespace Irr.Tests.Cli;

/// <summary>Runs an irr command line in-process and captures what it prints.</summary>
internal static class CliRunner
{
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Irr.Cli.Program.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }
}
