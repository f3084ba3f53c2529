using System.CommandLine;

namespace Irr.Cli;

/// <summary><c>irr baseline resta</c> (to be written).</summary>
internal static class BaselineRestaCommand
{
    public static Command Create() => new("resta", "RESTA: add the safety vector back to the fine-tuned model (not yet written)");
}
