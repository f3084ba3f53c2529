using System.CommandLine;
using Irr.IO;

namespace Irr.Cli;

/// <summary><c>irr convert</c>: a PyTorch state dict or pytorch_model.bin model to safetensors (<see cref="ConvertJob"/>).</summary>
internal static class ConvertCommand
{
    public static Command Create() => CommandSupport.TensorWriter(typeof(ConvertJob));
}
