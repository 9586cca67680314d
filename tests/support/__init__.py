"""What the tests share: fake servers, real-server roles, request data, call helpers. Test modules
import from here, never from each other."""
