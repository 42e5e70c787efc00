package SGPort;

# Ports for the servers the tests and the benchmarks start.  A port is
# taken at random below the kernel's ephemeral range and found free by
# binding it.  A port the kernel hands out (port 0), found free, can be
# handed out again before nginx binds it, to a test running alongside or
# as the local port of an outgoing connection, and nginx fails with
# "Address already in use".

use strict;
use warnings;

use Exporter qw(import);
use IO::Socket::INET;

our @EXPORT_OK = qw(free_port);

my $lowest = 10000;

# the first port of the ephemeral range, and how many may be chosen below
my ($ephemeral) = do {
    my $range = '';
    if (open my $fh, '<', '/proc/sys/net/ipv4/ip_local_port_range') {
        $range = <$fh> // '';
        close $fh;
    }
    $range =~ /^(\d+)/ ? $1 : 32768;
};
my $choices = $ephemeral - $lowest;

sub free_port {
    for (1 .. 200) {
        my $port = $choices > 0 ? $lowest + int(rand($choices)) : 0;
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Proto => 'tcp',
                                      Listen => 1, ReuseAddr => 1)
            or next;
        $port = $s->sockport;
        close $s;
        return $port;
    }
    die "no free port below $ephemeral: $!\n";
}

1;
