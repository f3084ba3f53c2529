using Irr.Tensors;

namespace Irr.Tests.Tensors;

/// <summary>An exception on one of the team's threads reaches the caller after every member finished, and the team goes on.</summary>
public class ThreadTeamFailureTests
{
    [Fact]
    public void AWorkersExceptionIsRethrownOnTheCallerAndTheTeamStaysUsable()
    {
        var team = ThreadTeam.Shared;
        int last = team.Size - 1; // the caller is thread 0; with one thread, the caller is the one that throws
        for (int round = 0; round < 3; round++)
        {
            int finished = 0, members = 0;
            var e = Assert.Throws<InvalidOperationException>(() => team.Run(team.Size, (id, n) =>
            {
                members = n;
                if (id == Math.Min(last, n - 1)) throw new InvalidOperationException($"thread {id} failed");
                Thread.Sleep(1);
                Interlocked.Increment(ref finished);
            }));
            Assert.Equal($"thread {Math.Min(last, members - 1)} failed", e.Message);
            Assert.Equal(members - 1, Volatile.Read(ref finished)); // the other members ran to their end before the caller saw it
            int used = 0;
            team.Run(team.Size, (_, n) => used = n);
            Assert.True(used >= 1);
        }
    }
}
