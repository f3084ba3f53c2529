using System.CommandLine;

namespace Irr.Cli;

/// <summary><c>irr baseline safelora</c> (to be written).</summary>
internal static class BaselineSafeLoraCommand
{
    public static Command Create() => new("safelora", "Safe LoRA: project LoRA updates onto the alignment subspace (not yet written)");
}
