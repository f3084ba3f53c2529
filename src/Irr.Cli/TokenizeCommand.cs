using System.CommandLine;
using Irr.Text;

namespace Irr.Cli;

/// <summary><c>irr tokenize</c>: encode text to ids (a JSON array) or decode ids to text, with a model's tokenizer (<see cref="TokenizeJob"/>).</summary>
internal static class TokenizeCommand
{
    internal static Command Create()
    {
        var command = new JobCommand(typeof(TokenizeJob));
        command.SetAction(parseResult =>
        {
            parseResult.InvocationConfiguration.Output.WriteLine(command.Build<TokenizeJob>(parseResult).Run());
            return 0;
        });
        return command;
    }
}
